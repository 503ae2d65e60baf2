package client

import (
	"math/rand/v2"
	"time"
)

// Backoff spaces out redials: Min doubling to Max, each delay jittered by
// ±20% so that many agents behind one outage do not redial in lockstep.
type Backoff struct {
	Min, Max time.Duration
	// StableAfter is how long a session must have lived for the next loss
	// to start again from Min.
	StableAfter time.Duration
}

// DefaultBackoff is 100 ms doubling to 10 s, reset after 30 s up.
func DefaultBackoff() Backoff {
	return Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second, StableAfter: 30 * time.Second}
}

// Delay returns the wait before retry number attempt (0-based).
func (b Backoff) Delay(attempt int) time.Duration { return b.delay(attempt) }

// delay returns the wait before retry number attempt (0-based).
func (b Backoff) delay(attempt int) time.Duration {
	d := b.Min
	for i := 0; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	jitter := time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5
	return d + jitter
}

// HurryFloor is the least time between redials of a lost session, however
// often someone asks for it meanwhile (WaitHurried).
const HurryFloor = time.Second

// WaitHurried waits d, the backoff after a failed redial, or less once
// hurry fires: someone is waiting for the session now (a new ssh, a
// keystroke, a new forwarded connection), so the path is worth trying again without
// sitting out a backoff grown to Max in a long outage. It still waits at
// least HurryFloor from its start. It reports false if done closed first.
func WaitHurried(done <-chan struct{}, d time.Duration, hurry <-chan struct{}) bool {
	start := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-done:
			return false
		case <-hurry:
			if left := HurryFloor - time.Since(start); left < time.Until(start.Add(d)) {
				t.Reset(max(left, 0))
			}
		}
	}
}
