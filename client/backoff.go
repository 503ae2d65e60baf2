package client

import (
	"errors"
	"math/rand/v2"
	"time"
)

// Backoff spaces out redials: Min doubling to Max, each delay jittered by
// ±20% so that many agents behind one outage do not redial in lockstep.
type Backoff struct {
	Min, Max time.Duration
	// MaxBusy, if set and below Max, caps the delay while the session
	// carries streams (DelayBusy), below Min too: someone's ssh waits on
	// it, and a path that comes back only now and then (a flapping link)
	// must be tried while it is up, not once every Max.
	MaxBusy time.Duration
	// StableAfter is how long a session must have lived for the next loss
	// to start again from Min.
	StableAfter time.Duration
}

// DefaultBackoff is 100 ms doubling to 10 s (2 s while streams wait),
// reset after 30 s up.
func DefaultBackoff() Backoff {
	return Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second, MaxBusy: 2 * time.Second, StableAfter: 30 * time.Second}
}

// Check reports an unusable backoff, unwrapped: each Config's Validate
// wraps it in its own ErrInvalidConfig.
func (b Backoff) Check() error {
	if b.Min <= 0 || b.Max < b.Min || b.MaxBusy < 0 {
		return errors.New("backoff needs 0 < min <= max and max busy >= 0")
	}
	return nil
}

// Delay returns the wait before retry number attempt (0-based).
func (b Backoff) Delay(attempt int) time.Duration { return b.delay(attempt, b.Max) }

// DelayBusy is Delay for a session that carries streams: capped at
// MaxBusy when that is set.
func (b Backoff) DelayBusy(attempt int) time.Duration {
	limit := b.Max
	if b.MaxBusy > 0 {
		limit = min(limit, b.MaxBusy)
	}
	return b.delay(attempt, limit)
}

// delay returns the wait before retry number attempt (0-based), doubling
// from Min up to limit.
func (b Backoff) delay(attempt int, limit time.Duration) time.Duration {
	d := b.Min
	for i := 0; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	jitter := time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5
	return d + jitter
}

// HurryFloor is the least time between redials of a lost session, however
// often someone asks for it meanwhile (WaitHurried).
const HurryFloor = time.Second

// WaitHurried waits d, the backoff after a failed redial, or less once
// hurry fires: someone is waiting for the session now (a new ssh, a
// keystroke, a new forwarded connection), so the path is worth trying
// again without sitting out a backoff grown to Max in a long outage. It
// still waits at least HurryFloor from its start, plus up to 40 % more
// at random: a session with a heartbeat (ssh's ServerAliveInterval) asks
// all the time, and many of them behind one outage must not redial in
// lockstep. It reports false if done closed first.
func WaitHurried(done <-chan struct{}, d time.Duration, hurry <-chan struct{}) bool {
	start := time.Now()
	floor := HurryFloor + time.Duration(rand.Int64N(int64(HurryFloor)*2/5+1))
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-done:
			return false
		case <-hurry:
			if left := floor - time.Since(start); left < time.Until(start.Add(d)) {
				t.Reset(max(left, 0))
			}
		}
	}
}
