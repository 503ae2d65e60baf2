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

// OpenFDsAsIs counts this process's open descriptors without collecting
// garbage first, as OpenFDs does: a connection that nothing reaches any
// more but nobody closed is closed by its finalizer at a collection, so
// OpenFDs does not see it leak. The caller turns the collector off
// (debug.SetGCPercent(-1)) while it counts, and uses nothing that caches
// descriptors until a collection (io.Copy from TCP to TCP: OpenFDs).
func OpenFDsAsIs(t testing.TB) int {
	t.Helper()
	return countFDs(t, func(string) bool { return true })
}

// OpenSockets is OpenFDsAsIs for sockets only, which leaves out the pipes
// the net package caches.
func OpenSockets(t testing.TB) int {
	t.Helper()
	return countFDs(t, func(link string) bool { return strings.HasPrefix(link, "socket:") })
}

// countFDs counts the descriptors in /proc/self/fd whose link keep takes.
func countFDs(t testing.TB, keep func(link string) bool) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd to count descriptors: %v", err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && keep(l) {
			n++
		}
	}
	return n
}
