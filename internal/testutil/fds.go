package testutil

import (
	"os"
	"runtime"
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
