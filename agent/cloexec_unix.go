//go:build !windows

package agent

import (
	"os"
	"strconv"
	"syscall"
)

// cloexecListed marks close-on-exec every descriptor from lowfd up that
// dir (/proc/self/fd, /dev/fd) lists.
func cloexecListed(dir string, lowfd int) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= lowfd {
			syscall.CloseOnExec(fd)
		}
	}
}

// fdLimit is this process's soft limit on open descriptors.
func fdLimit() uint64 {
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return uint64(lim.Cur)
}
