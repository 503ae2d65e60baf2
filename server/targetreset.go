package server

import (
	"errors"
	"io"
	"net"
	"sync/atomic"

	"github.com/sandmux/sandmux/mux"
)

// A target connection that fails (reset, not ended) must not reach the
// client as the stream's clean end: a program behind `sandmux forward`
// would take the bytes it got for the whole. The stream is reset (RST)
// instead of finished.

// streamSide is the stream in the splice: reset, not finished, once the
// target has failed.
type streamSide struct {
	*mux.Stream
	failed *atomic.Bool
}

func (s streamSide) Close() error {
	if s.failed.Load() {
		s.Abort()
	}
	return s.Stream.Close()
}

// spliceTarget carries st to and from the target connection tc.
func spliceTarget(st *mux.Stream, tc net.Conn) error {
	var failed atomic.Bool
	target := mux.Watch(mux.Direct(tc), func(err error) {
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			failed.Store(true)
		}
	})
	return mux.Splice(streamSide{Stream: st, failed: &failed}, target)
}
