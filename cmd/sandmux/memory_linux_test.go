package main

import (
	"slices"
	"testing"
)

// The memory limit of the process's own cgroup is read, not only the
// hierarchy root's: outside a cgroup namespace (a systemd unit with
// MemoryMax, a cgroup v1 container runtime) the root's says nothing of
// the process's limit, and --max-receive-buffer's auto took a quarter of
// the whole machine.
func TestCgroupMemoryFiles(t *testing.T) {
	roots := []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}
	for _, c := range []struct {
		name, self string
		want       []string
	}{
		{"v2 unit", "0::/system.slice/sandmux.service\n",
			append(slices.Clone(roots), "/sys/fs/cgroup/system.slice/sandmux.service/memory.max")},
		{"v1", "9:name=systemd:/\n4:memory:/process_api/438c\n3:cpuset:/\n0::/\n",
			append(slices.Clone(roots), "/sys/fs/cgroup/memory/process_api/438c/memory.limit_in_bytes")},
		{"v1 joined controllers", "5:memory,hugetlb:/docker/ab\n",
			append(slices.Clone(roots), "/sys/fs/cgroup/memory/docker/ab/memory.limit_in_bytes")},
		{"namespaced", "0::/\n", roots},
		{"unreadable", "", roots},
		{"escape", "0::/../../etc\n", roots},
	} {
		if got := cgroupMemoryFiles(c.self); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
