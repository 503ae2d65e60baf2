package mux

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
)

// copyBufSize is large enough that one read from a fast TCP socket fills
// several frames, yet small enough to keep idle memory per stream low
// (buffers are pooled, not held per stream).
const copyBufSize = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// closeWriter is a connection that can half-close: TCP, Unix sockets and
// Stream.
type closeWriter interface {
	CloseWrite() error
}

// Splice copies a to b and b to a until both directions are done, carrying
// half-close: when one side reads EOF, the other side's write half is
// closed (or the whole connection, where it cannot half-close) and the
// opposite direction goes on. The first real error closes both sides at
// once and is returned; errors caused by that close are not.
// Both a and b are closed when Splice returns.
func Splice(a, b io.ReadWriteCloser) error {
	var (
		once     sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		once.Do(func() {
			firstErr = err
			_ = a.Close()
			_ = b.Close()
		})
	}
	pipe := func(dst, src io.ReadWriteCloser) {
		defer wg.Done()
		if err := copyStream(dst, src); err != nil {
			fail(err)
			return
		}
		if cw, ok := dst.(closeWriter); ok {
			if err := cw.CloseWrite(); err != nil && !isClosed(err) {
				fail(err)
			}
			return
		}
		// dst cannot half-close, so the only way to pass the EOF on is to
		// close it; that ends the other direction too.
		fail(nil)
	}
	wg.Add(2)
	go pipe(b, a)
	go pipe(a, b)
	wg.Wait()
	once.Do(func() {})
	_ = a.Close()
	_ = b.Close()
	return firstErr
}

// copyStream copies until EOF with a pooled buffer. It deliberately avoids
// io.Copy's ReaderFrom/WriterTo shortcuts, whose buffer sizes and write
// patterns it cannot control.
func copyStream(dst io.Writer, src io.Reader) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// isClosed reports whether err means the connection was already closed.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) || errors.Is(err, io.ErrClosedPipe)
}
