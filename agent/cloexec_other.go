//go:build !windows && !linux

package agent

import "syscall"

// CloseOnExecFrom marks every descriptor from lowfd up close-on-exec, so
// that a process started next inherits only its stdio (and ExtraFiles).
// /dev/fd lists every open descriptor on macOS, but only 0-2 on a FreeBSD
// without fdescfs (and a fixed set on OpenBSD): every descriptor below
// the limit is tried too (EBADF for the closed ones).
func CloseOnExecFrom(lowfd int) {
	cloexecListed("/dev/fd", lowfd)
	top := min(fdLimit(), 1<<16)
	for fd := lowfd; uint64(fd) < top; fd++ {
		syscall.CloseOnExec(fd)
	}
}
