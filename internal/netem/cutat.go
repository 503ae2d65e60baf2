package netem

import (
	"slices"
	"sync"
	"sync/atomic"
)

// marks holds the byte counts at which the proxy acts on itself (CutAt,
// FreezeAt, FreezeToTargetAt). next mirrors plan[0] (or -1) so that a
// reader checks one atomic per read rather than taking a lock.
type marks struct {
	next  atomic.Int64
	fired atomic.Int64

	mu   sync.Mutex
	plan []int64
}

// Carried is how many bytes the proxy has read from both sides, over every
// connection since it started.
func (p *Proxy) Carried() int64 { return p.carried.Load() }

// CutAt arms a Cut for each of at: the read that takes Carried to or past
// one of them cuts every pair at once, itself included, before its bytes
// are passed on. A cut lands within one read of its mark however fast the
// bytes move, which a timer watching the copy cannot promise: a copy
// faster than the timer would be cut late or not at all. A call replaces
// the marks not yet reached; none disarms them. Marks below zero, which
// no count reaches, are dropped.
func (p *Proxy) CutAt(at ...int64) { p.cuts.set(at) }

// CutsAt counts the cuts that marks of CutAt made so far. It counts a cut
// before making it, so a peer that sees the reset sees it counted.
func (p *Proxy) CutsAt() int64 { return p.cuts.fired.Load() }

// FreezeAt arms a Freeze for each of at, as CutAt arms a Cut: the read
// that takes Carried to or past a mark freezes the proxy, its own bytes
// queued behind the freeze, so a transfer stops at a known point however
// fast it moves until Thaw, and a test can act on it there (cut it,
// start another connection) rather than race a copy to the point.
func (p *Proxy) FreezeAt(at ...int64) { p.freezes.set(at) }

// FreezesAt counts the freezes that marks of FreezeAt made so far; a
// freeze is in force by the time it is counted.
func (p *Proxy) FreezesAt() int64 { return p.freezes.fired.Load() }

// FreezeToTargetAt arms a FreezeToTarget for each of at, as FreezeAt
// arms a Freeze: from the read that reaches a mark on, clients' bytes are
// read but held from the target until Thaw.
func (p *Proxy) FreezeToTargetAt(at ...int64) { p.holds.set(at) }

// FreezesToTargetAt counts the freezes that marks of FreezeToTargetAt
// made so far; a freeze is in force by the time it is counted.
func (p *Proxy) FreezesToTargetAt() int64 { return p.holds.fired.Load() }

// carry adds n bytes read, makes the freezes whose marks they reach, and
// reports whether they reached a mark of CutAt, which the reader then
// makes.
func (p *Proxy) carry(n int) (cut bool) {
	total := p.carried.Add(int64(n))
	if p.freezes.reach(total) {
		p.gate.freeze()
		p.freezes.fired.Add(1)
	}
	if p.holds.reach(total) {
		p.toTarget.freeze()
		p.holds.fired.Add(1)
	}
	if p.cuts.reach(total) {
		p.cuts.fired.Add(1)
		return true
	}
	return false
}

// set replaces the marks not yet reached.
func (m *marks) set(at []int64) {
	plan := slices.DeleteFunc(slices.Clone(at), func(n int64) bool { return n < 0 })
	slices.Sort(plan)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.plan = plan
	m.arm()
}

// arm publishes the first mark; it must be called with mu held.
func (m *marks) arm() {
	if len(m.plan) == 0 {
		m.next.Store(-1)
		return
	}
	m.next.Store(m.plan[0])
}

// reach reports whether total reached a mark, which it then consumes
// (with every other mark it passed: one action serves them all).
func (m *marks) reach(total int64) bool {
	if next := m.next.Load(); next < 0 || total < next {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	reached := false
	for len(m.plan) > 0 && m.plan[0] <= total {
		m.plan, reached = m.plan[1:], true
	}
	m.arm()
	return reached
}
