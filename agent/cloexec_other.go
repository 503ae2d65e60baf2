//go:build !windows && !linux

package agent

// CloseOnExecFrom marks every descriptor from lowfd up close-on-exec, so
// that a process started next inherits only its stdio (and ExtraFiles).
func CloseOnExecFrom(lowfd int) { cloexecListed("/dev/fd", lowfd) }
