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

// targetSide is the target connection in the splice, noting a failure.
type targetSide struct {
	io.ReadWriteCloser // mux.Direct of the target connection
	cw                 interface{ CloseWrite() error }
	failed             *atomic.Bool
	closing            atomic.Bool
}

func (t *targetSide) Read(p []byte) (int, error) {
	n, err := t.ReadWriteCloser.Read(p)
	t.note(err)
	return n, err
}

func (t *targetSide) Write(p []byte) (int, error) {
	n, err := t.ReadWriteCloser.Write(p)
	t.note(err)
	return n, err
}

func (t *targetSide) note(err error) {
	if err != nil && !t.closing.Load() && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		t.failed.Store(true)
	}
}

// Close marks the errors that follow as the splice's own.
func (t *targetSide) Close() error {
	t.closing.Store(true)
	return t.ReadWriteCloser.Close()
}

// CloseWrite passes the stream's end on to the target.
func (t *targetSide) CloseWrite() error { return t.cw.CloseWrite() }

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
	cw, ok := tc.(interface{ CloseWrite() error })
	if !ok {
		return mux.Splice(st, mux.Direct(tc))
	}
	var failed atomic.Bool
	return mux.Splice(streamSide{Stream: st, failed: &failed},
		&targetSide{ReadWriteCloser: mux.Direct(tc), cw: cw, failed: &failed})
}
