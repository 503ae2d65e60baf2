//go:build windows

package mux

import "io"

// RestoreBlocking returns a function that does nothing: Windows handles
// have no non-blocking mode to put back.
func RestoreBlocking(uintptr) func() { return func() {} }

// RestoreOnClose returns rwc (see RestoreBlocking).
func RestoreOnClose(rwc io.ReadWriteCloser, _ func()) io.ReadWriteCloser { return rwc }
