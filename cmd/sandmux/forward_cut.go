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
// data, a truncation it cannot tell from a finished transfer. The stream
// is watched for a failure, and the local connection, closed by the
// splice, is then reset (RST) instead.

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

// resetClose closes a local connection with a reset where it can.
func resetClose(c net.Conn) {
	if tcp, ok := c.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = c.Close()
}

// resetOnCut is the local connection: closed with a reset once its
// stream has failed.
type resetOnCut struct {
	io.ReadWriteCloser // mux.Direct of the TCP connection
	tcp                *net.TCPConn
	cut                *atomic.Bool
}

func (l resetOnCut) Close() error {
	if l.cut.Load() {
		_ = l.tcp.SetLinger(0)
	}
	return l.ReadWriteCloser.Close()
}

// CloseWrite half-closes the TCP connection (the splice passes an EOF on).
func (l resetOnCut) CloseWrite() error { return l.tcp.CloseWrite() }

// localConn wraps an accepted connection for the splice; anything but TCP
// is used as it is.
func localConn(c net.Conn, cut *atomic.Bool) io.ReadWriteCloser {
	tcp, ok := c.(*net.TCPConn)
	if !ok {
		return mux.Direct(c)
	}
	return resetOnCut{ReadWriteCloser: mux.Direct(c), tcp: tcp, cut: cut}
}
