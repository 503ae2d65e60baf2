package main

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// memoryTotal is the memory this process may use: the machine's, or its
// cgroup's limit (a container) if lower.
func memoryTotal() (uint64, bool) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0, false
	}
	total := uint64(si.Totalram) * uint64(si.Unit)
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if lim, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && lim > 0 {
			total = min(total, lim)
		}
	}
	return total, total > 0
}
