package mux

import "sync"

// ReplayBudget bounds the resume buffers of several Resumables together
// (ResumeConfig.Budget): a server's, each of which may otherwise keep
// ResumeConfig.Buffer (64 MiB) of bytes its peer has not acknowledged, on
// every session, for as long as the peer does not acknowledge them (a
// client that reads but never acknowledges, or one whose WebSocket was
// lost while its targets kept sending).
//
// Every byte sent and not yet acknowledged counts. A Resumable may always
// have MinInFlight (and a small message's slack) in flight, and one
// message when it has nothing in flight, so that no session waits for
// another's peer; beyond, a message waits for room in the budget as it
// waits for the in-flight limit (the sender simply waits), and is woken
// when another Resumable's acknowledgement or end gives room back. So the
// Resumables sharing it hold at most its limit plus about a message and
// MinInFlight each (a message admitted at the same moment by each may
// overshoot the limit by one).
type ReplayBudget struct {
	limit uint64

	mu      sync.Mutex
	used    uint64
	waiting map[*Resumable]struct{} // to wake once room is given back
}

// NewReplayBudget returns a budget of limit bytes; zero means no bound
// (it only counts).
func NewReplayBudget(limit uint64) *ReplayBudget {
	return &ReplayBudget{limit: limit, waiting: make(map[*Resumable]struct{})}
}

// Limit is the budget's size, zero for none.
func (b *ReplayBudget) Limit() uint64 { return b.limit }

// InUse is how many bytes the Resumables sharing b hold unacknowledged.
func (b *ReplayBudget) InUse() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// fits reports whether n more bytes fit; if not, r is woken (wakeLocked)
// once some are given back. Call with r.mu held.
func (b *ReplayBudget) fits(r *Resumable, n uint64) bool {
	if b == nil || b.limit == 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n <= b.limit {
		return true
	}
	b.waiting[r] = struct{}{}
	return false
}

// add counts n bytes sent. Call with r.mu held.
func (b *ReplayBudget) add(n uint64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.used += n
	b.mu.Unlock()
}

// forget stops waking r, which has ended. Call with r.mu held.
func (b *ReplayBudget) forget(r *Resumable) {
	if b == nil {
		return
	}
	b.mu.Lock()
	delete(b.waiting, r)
	b.mu.Unlock()
}

// release gives back n bytes acknowledged (or dropped with their
// Resumable) and wakes the Resumables waiting for room. Call with no
// Resumable's mu held: it takes theirs.
func (b *ReplayBudget) release(n uint64) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	var wake map[*Resumable]struct{}
	if len(b.waiting) > 0 && b.used < b.limit {
		wake, b.waiting = b.waiting, make(map[*Resumable]struct{})
	}
	b.mu.Unlock()
	for r := range wake {
		// Under r.mu, so that a writer that found no room and has not
		// yet begun to wait is woken all the same (it waits holding it).
		r.mu.Lock()
		r.wakeLocked()
		r.mu.Unlock()
	}
}
