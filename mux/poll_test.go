package mux

import "time"

// pollUntil polls cond until it holds or timeout passes, and reports
// whether it held: testutil.Poll for the tests inside package mux, which
// cannot import internal/testutil (it imports this package); mux_test
// uses testutil.Poll itself.
func pollUntil(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
