//go:build linux

package mux

import "golang.org/x/sys/unix"

// pipeSize is the buffer asked for on the pipes a ProxyCommand is given.
// A Linux pipe holds 64 KiB, so every read and write on it moves at most
// that; 256 KiB lets a bulk transfer move a whole frame (Config.MaxFrame)
// per syscall. Not more: all pipes of a user share a soft limit
// (fs.pipe-user-pages-soft, 64 MiB by default) beyond which new pipes get
// a single page, which would slow every program of that user.
const pipeSize = 256 << 10

// TunePipe enlarges the buffer of v if it is a pipe (an *os.File, or any
// value with SyscallConn) whose buffer is smaller than pipeSize. Failure
// (not a pipe, a limit reached) is ignored: the pipe works as it is.
func TunePipe(v any) {
	withFD(v, func(fd uintptr) {
		if n, err := unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0); err == nil && n < pipeSize {
			_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize)
		}
	})
}
