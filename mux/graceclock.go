package mux

import "time"

// graceClock measures how long a session has been detached, counting
// only time this process was running. A sandbox pause freezes the process
// (like SIGSTOP) while wall and monotonic clocks run on; on resume the
// frozen span must not count against the grace, or every paused sandbox
// would lose its sessions. Each tick adds at most maxStep.
type graceClock struct {
	last    time.Time
	elapsed time.Duration
	maxStep time.Duration
}

func newGraceClock(step time.Duration) *graceClock {
	return &graceClock{last: time.Now(), maxStep: 2 * step}
}

// tick accounts for the time since the last tick and returns the total.
func (g *graceClock) tick() time.Duration {
	now := time.Now()
	g.elapsed += min(now.Sub(g.last), g.maxStep)
	g.last = now
	return g.elapsed
}
