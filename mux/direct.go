package mux

import (
	"io"
	"syscall"
)

// Direct returns rw doing its reads and writes as raw system calls when it
// is a non-blocking socket or pipe on Linux, and rw itself otherwise (a
// terminal, a blocking descriptor, TLS, another platform).
//
// Why: the copying processes run Go code on one thread (GOMAXPROCS=1,
// cmd/sandmux), and Go's scheduler hands that thread's P to another
// thread whenever a system call outlasts a tick of its monitor (about
// 20 µs), which it does not retake only while some other P is idle, and
// with one P none is. Moving 256 KiB through a loopback socket takes
// longer than that, so nearly every large read and write woke a second
// thread to run nothing, and kept the monitor polling every 20 µs; on the
// virtual machine the bench runs on, each such wake-up costs more than the
// copy. A raw system call is not seen by the scheduler: the descriptor is
// non-blocking, so the call only copies what fits and returns, and a read
// or write that would block parks the goroutine on Go's poller as before.
// Deadlines and Close work as for the descriptor itself.
func Direct(rw io.ReadWriteCloser) io.ReadWriteCloser {
	raw := newRawIO(rw)
	switch {
	case raw == nil:
		return rw
	case isCloseWriter(rw):
		return &directHalf{direct{ReadWriteCloser: rw, raw: raw}}
	}
	return &direct{ReadWriteCloser: rw, raw: raw}
}

func isCloseWriter(v any) bool {
	_, ok := v.(closeWriter)
	return ok
}

// direct is Direct's wrapper. It keeps the descriptor of what it wraps.
type direct struct {
	io.ReadWriteCloser
	raw *rawIO
}

// Read implements io.Reader.
func (d *direct) Read(p []byte) (int, error) { return d.raw.read(p) }

// Write implements io.Writer.
func (d *direct) Write(p []byte) (int, error) { return d.raw.write(p) }

// SyscallConn returns the wrapped descriptor's, for tuning (TunePipe).
func (d *direct) SyscallConn() (syscall.RawConn, error) { return d.raw.rc, nil }

// directHalf is direct for a connection that can half-close (Splice
// passes an EOF on that way).
type directHalf struct{ direct }

// CloseWrite half-closes the wrapped connection.
func (d *directHalf) CloseWrite() error {
	d.raw.finish()
	return d.ReadWriteCloser.(closeWriter).CloseWrite()
}

// Abort resets the wrapped connection where it can (see Abort).
func (d *direct) Abort() { Abort(d.ReadWriteCloser) }
