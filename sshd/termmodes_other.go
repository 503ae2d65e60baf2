//go:build unix && !linux

package sshd

import "os"

// applyTermModes leaves the pty's defaults: the embedded server is meant
// for Linux sandboxes, and the termios layout differs elsewhere.
func applyTermModes(*os.File, []termMode) error { return nil }
