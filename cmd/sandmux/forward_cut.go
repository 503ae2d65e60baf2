package main

import (
	"errors"
	"io"
	"net"
	"sync/atomic"

	"github.com/sandmux/sandmux/mux"
)

// A forwarded connection whose tunnel stream fails must not end with a
// FIN: its local client would read a clean end after a prefix of the
// data, a truncation it cannot tell from a finished transfer. The splice
// resets it (RST) instead, and the stream is watched for a failure, which
// is worth a line, where a local client that reset its connection is not.

// watchCut wraps a tunnel stream to note how it ended: ended at a clean
// end of its data, cut at any other error that is not the splice's own
// close (after the local side failed, or ended on a stream that cannot
// half-close).
func watchCut(stream net.Conn, cut, ended *atomic.Bool) io.ReadWriteCloser {
	return mux.Watch(stream, func(err error) {
		switch {
		case errors.Is(err, io.EOF):
			ended.Store(true)
		case !errors.Is(err, net.ErrClosed):
			cut.Store(true)
		}
	})
}
