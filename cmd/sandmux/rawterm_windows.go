package main

import (
	"os"

	"golang.org/x/sys/windows"
)

// rawTerminal reports whether f is a console whose line feed does not
// return to the left edge: Windows's ssh (Win32-OpenSSH) sets
// DISABLE_NEWLINE_AUTO_RETURN on its console for a session, as ssh
// elsewhere turns off OPOST, and a proxy's line written there with a
// bare "\n" started wherever the last one ended.
func rawTerminal(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	raw := false
	_ = rc.Control(func(fd uintptr) {
		var mode uint32
		err := windows.GetConsoleMode(windows.Handle(fd), &mode)
		raw = err == nil && mode&windows.DISABLE_NEWLINE_AUTO_RETURN != 0
	})
	return raw
}
