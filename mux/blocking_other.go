//go:build windows

package mux

// RestoreBlocking returns a function that does nothing: Windows handles
// have no non-blocking mode to put back.
func RestoreBlocking(uintptr) func() { return func() {} }
