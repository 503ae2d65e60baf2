//go:build unix

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// rawTerminal reports whether f is a terminal with output processing
// off (OPOST clear), as ssh leaves its terminal during a session.
func rawTerminal(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	raw := false
	_ = rc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), ioctlGetTermios)
		raw = err == nil && t.Oflag&unix.OPOST == 0
	})
	return raw
}
