//go:build !windows

package mux

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// RestoreBlocking is for a descriptor this process puts in non-blocking
// mode (a ProxyCommand's stdin or stdout, so that Go's poller can wait on
// it): it returns a function that puts fd's open file back in blocking
// mode, to be called once nothing here reads or writes it any more, that
// is after every descriptor of it this process uses is closed (see
// RestoreOnClose for a descriptor that is the only one). It takes
// a duplicate of fd now, which the function closes; it may be called more
// than once, and does nothing if fd could not be duplicated.
//
// Why: the mode belongs to the open file, which every process sharing the
// pipe or socket shares too; left non-blocking, the next command of a
// script reading the same stdin would fail with EAGAIN. Why only after
// every close: a raw read still in flight (Direct) on a descriptor made
// blocking under it would stall this process's only thread until data
// came, and stdin and stdout may be one socket, so closing one of them
// is not enough.
func RestoreBlocking(fd uintptr) func() {
	keep, err := unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return func() {}
	}
	return sync.OnceFunc(func() {
		_ = unix.SetNonblock(keep, false)
		_ = unix.Close(keep)
	})
}

// RestoreOnClose returns rwc with a Close that runs restore (from
// RestoreBlocking for rwc's descriptor) as soon as it has closed rwc,
// rather than when the whole stream is done: the duplicate RestoreBlocking
// keeps would otherwise hold a pipe's write end open, and its reader (ssh)
// would not see EOF. It is safe then because closing waits for every raw
// call in flight on the descriptor to return; a Close that finds rwc
// already closed (another goroutine's, which may still be waiting) leaves
// restore to that one. Only for a descriptor that shares its open file
// with no other descriptor this process still uses.
func RestoreOnClose(rwc io.ReadWriteCloser, restore func()) io.ReadWriteCloser {
	r := restoring{ReadWriteCloser: rwc, restore: restore}
	if isCloseWriter(rwc) {
		return restoringHalf{r}
	}
	return r
}

// restoring is RestoreOnClose's wrapper.
type restoring struct {
	io.ReadWriteCloser
	restore func()
}

// Close closes the wrapped descriptor, then restores its mode unless it
// was closed already.
func (r restoring) Close() error {
	err := r.ReadWriteCloser.Close()
	if !errors.Is(err, os.ErrClosed) && !errors.Is(err, net.ErrClosed) {
		r.restore()
	}
	return err
}

// SyscallConn is the wrapped descriptor's, for tuning (TunePipe).
func (r restoring) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := r.ReadWriteCloser.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// restoringHalf is restoring for a socket, which may be half-closed.
type restoringHalf struct{ restoring }

// CloseWrite half-closes the wrapped connection.
func (r restoringHalf) CloseWrite() error { return r.ReadWriteCloser.(closeWriter).CloseWrite() }
