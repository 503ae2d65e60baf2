package mux

import (
	"io"
	"sync/atomic"
)

// Watch wraps c so that note sees each error c's Read, ReadChunk and Write
// return, before their caller does, except those that follow Watch's own
// Close (the caller's doing, not c's failure). Callers use it to tell a
// connection that failed from one that ended: to pass a cut on as such,
// or to reset what a cut leaves half-done. It keeps what Splice looks
// for: CloseWrite, when c can half-close, and ReadChunk, when c lends
// its chunks; its Abort aborts c.
func Watch(c io.ReadWriteCloser, note func(error)) io.ReadWriteCloser {
	w := &watched{ReadWriteCloser: c, note: note}
	cw, half := c.(closeWriter)
	cr, chunks := c.(ChunkReader)
	switch {
	case half && chunks:
		return watchedChunks{watchedHalf{w, cw}, cr}
	case half:
		return watchedHalf{w, cw}
	}
	return w
}

type watched struct {
	io.ReadWriteCloser
	note    func(error)
	closing atomic.Bool
}

func (w *watched) Read(p []byte) (int, error) {
	n, err := w.ReadWriteCloser.Read(p)
	w.tell(err)
	return n, err
}

func (w *watched) Write(p []byte) (int, error) {
	n, err := w.ReadWriteCloser.Write(p)
	w.tell(err)
	return n, err
}

// Close marks the errors that follow as the caller's own.
func (w *watched) Close() error {
	w.closing.Store(true)
	return w.ReadWriteCloser.Close()
}

// Abort is Close for a cut (see Abort): the reset reaches what w wraps.
func (w *watched) Abort() {
	w.closing.Store(true)
	Abort(w.ReadWriteCloser)
}

func (w *watched) tell(err error) {
	if err != nil && !w.closing.Load() {
		w.note(err)
	}
}

// watchedHalf is watched over a connection that can half-close.
type watchedHalf struct {
	*watched
	cw closeWriter
}

func (w watchedHalf) CloseWrite() error { return w.cw.CloseWrite() }

// watchedChunks is watchedHalf over a connection that lends its chunks.
type watchedChunks struct {
	watchedHalf
	cr ChunkReader
}

func (w watchedChunks) ReadChunk() ([]byte, *[]byte, error) {
	b, token, err := w.cr.ReadChunk()
	w.tell(err)
	return b, token, err
}

func (w watchedChunks) ReleaseChunk(token *[]byte) { w.cr.ReleaseChunk(token) }

// unwatched is c without the Watch wrappers around it.
func unwatched(c io.Closer) io.Closer {
	for {
		switch v := c.(type) {
		case watchedChunks:
			c = v.ReadWriteCloser
		case watchedHalf:
			c = v.ReadWriteCloser
		case *watched:
			c = v.ReadWriteCloser
		default:
			return c
		}
	}
}
