package agent

import "golang.org/x/sys/unix"

// CloseOnExecFrom marks every descriptor from lowfd up close-on-exec, so
// that a process started next inherits only its stdio (and ExtraFiles).
func CloseOnExecFrom(lowfd int) {
	if err := unix.CloseRange(uint(lowfd), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return
	}
	cloexecListed("/proc/self/fd", lowfd) // kernels before 5.11
}
