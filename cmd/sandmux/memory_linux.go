package main

import (
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// memoryTotal is the memory this process may use: the machine's, or its
// cgroup's limit if lower (a container, a systemd unit's MemoryMax).
func memoryTotal() (uint64, bool) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0, false
	}
	total := uint64(si.Totalram) * uint64(si.Unit)
	self, _ := os.ReadFile("/proc/self/cgroup")
	for _, file := range cgroupMemoryFiles(string(self)) {
		if b, err := os.ReadFile(file); err == nil {
			if lim, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && lim > 0 {
				total = min(total, lim)
			}
		}
	}
	return total, total > 0
}

// cgroupMemoryFiles lists the files that may hold this process's memory
// limit, given /proc/self/cgroup: cgroup v2's memory.max and v1's
// memory.limit_in_bytes, in its own cgroup and at the hierarchy's root
// (which is its own in a container with a cgroup namespace, where
// /proc/self/cgroup says "/"). "max", or v1's near-2^63 for none, leaves
// the machine's figure.
func cgroupMemoryFiles(self string) []string {
	files := []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}
	for line := range strings.Lines(self) {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 || parts[2] == "/" || strings.Contains(parts[2], "..") {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			files = append(files, path.Join("/sys/fs/cgroup", parts[2], "memory.max"))
		case strings.Contains(","+parts[1]+",", ",memory,"):
			files = append(files, path.Join("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes"))
		}
	}
	return files
}
