package netem

import (
	"slices"
	"sync"
	"sync/atomic"
)

// cutPlan holds the byte counts at which the proxy cuts itself (CutAt).
// next mirrors plan[0] (or -1) so that a reader checks one atomic per
// read rather than taking a lock.
type cutPlan struct {
	carried atomic.Int64
	next    atomic.Int64
	fired   atomic.Int64

	mu   sync.Mutex
	plan []int64
}

// Carried is how many bytes the proxy has read from both sides, over every
// connection since it started.
func (p *Proxy) Carried() int64 { return p.cuts.carried.Load() }

// CutAt arms a Cut for each of at: the read that takes Carried to or past
// one of them cuts every pair at once, itself included, before its bytes
// are passed on. A cut lands within one read of its mark however fast the
// bytes move, which a timer watching the copy cannot promise: a copy
// faster than the timer would be cut late or not at all. A call replaces
// the marks not yet reached; none disarms them. Marks below zero, which
// no count reaches, are dropped.
func (p *Proxy) CutAt(at ...int64) {
	plan := slices.DeleteFunc(slices.Clone(at), func(n int64) bool { return n < 0 })
	slices.Sort(plan)
	p.cuts.mu.Lock()
	defer p.cuts.mu.Unlock()
	p.cuts.plan = plan
	p.cuts.arm()
}

// CutsAt counts the cuts that marks of CutAt made so far. It counts a cut
// before making it, so a peer that sees the reset sees it counted.
func (p *Proxy) CutsAt() int64 { return p.cuts.fired.Load() }

// arm publishes the first mark; it must be called with mu held.
func (c *cutPlan) arm() {
	if len(c.plan) == 0 {
		c.next.Store(-1)
		return
	}
	c.next.Store(c.plan[0])
}

// count adds n bytes read and reports whether they reached a mark, which
// it then consumes (with every other mark they passed: one cut serves
// them all).
func (c *cutPlan) count(n int) bool {
	total := c.carried.Add(int64(n))
	if next := c.next.Load(); next < 0 || total < next {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	reached := false
	for len(c.plan) > 0 && c.plan[0] <= total {
		c.plan, reached = c.plan[1:], true
	}
	c.arm()
	if reached {
		c.fired.Add(1)
	}
	return reached
}
