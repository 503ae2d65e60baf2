package testutil

import (
	"os"
	"runtime"
	"strings"
	"testing"
)

// OpenFDs counts this process's open descriptors, to compare before and
// after the code under test, and skips the test where /proc/self/fd is
// missing. It collects garbage twice first: the net package caches the
// pipes it splices TCP to TCP with (an echo server's io.Copy) in a
// sync.Pool, which only a collection empties.
func OpenFDs(t testing.TB) int {
	t.Helper()
	runtime.GC()
	runtime.GC()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd to count descriptors: %v", err)
	}
	return len(ents)
}

// OpenSockets counts this process's open sockets without collecting
// garbage first, as OpenFDs does: a connection that nothing reaches any
// more but nobody closed is closed by its finalizer at a collection, so
// OpenFDs does not see it leak. Counting sockets only leaves out the
// pipes the net package caches until a collection. The caller turns the
// collector off (debug.SetGCPercent(-1)) while it counts.
func OpenSockets(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd to count descriptors: %v", err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}
