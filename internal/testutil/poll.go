package testutil

import (
	"testing"
	"time"
)

// PollEvery is the pause between two checks of a polled condition: short
// beside any timeout a test waits for, long enough not to spin a CPU that
// the code under test needs.
const PollEvery = 10 * time.Millisecond

// Poll checks cond until it holds or timeout has passed, and reports
// whether it held. cond is checked once more at the deadline, so a slow
// check is not cut short, and it runs on the caller's goroutine (it may
// call t.Fatal).
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(PollEvery)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
}

// WaitFor polls cond (see Poll) and fails the test if it does not hold
// within timeout; what names the awaited state in the failure.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}
