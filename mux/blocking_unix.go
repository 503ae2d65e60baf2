//go:build !windows

package mux

import (
	"sync"

	"golang.org/x/sys/unix"
)

// RestoreBlocking is for a descriptor this process puts in non-blocking
// mode (a ProxyCommand's stdin or stdout, so that Go's poller can wait on
// it): it returns a function that puts fd's open file back in blocking
// mode, to be called once nothing here reads or writes it any more, that
// is after every descriptor of it this process uses is closed. It takes
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
