package yamux

import "sync/atomic"

// sandmux patch: a window budget shared by sessions.
//
// MaxSessionWindowGrowth and MaxSessionReceiveWindow bound what one
// session buffers; a process serving many sessions (sandmux's server, up
// to a hundred) buffered up to that much for each of them, whatever memory
// it had. A WindowBudget given to several sessions' Configs bounds their
// windows' growth together: a stream's growth beyond its start window
// (StartStreamWindowSize), and a spare start (SpareStartWindowSize), is
// reserved from the session's own cap and then from the budget before the
// larger window is granted, and given back to both where the session's
// growth is given back (autotune.go), or when the session closes. Under
// the budget's pressure windows simply stop growing: a sender waits for
// the window it was granted, as with any window, and nothing granted is
// taken back. So the streams of all the sessions sharing a budget hold at
// most streams × start window + the budget, granted or unread.
type WindowBudget struct {
	limit uint64
	used  atomic.Uint64
}

// NewWindowBudget returns a budget of limit bytes; zero means no limit
// (the budget only counts).
func NewWindowBudget(limit uint64) *WindowBudget {
	return &WindowBudget{limit: limit}
}

// Limit is the budget's size, zero for none.
func (b *WindowBudget) Limit() uint64 { return b.limit }

// InUse is how much of the budget streams have taken and not given back.
func (b *WindowBudget) InUse() uint64 { return b.used.Load() }

// take takes up to want bytes and returns how many it got. A nil budget
// gives all.
func (b *WindowBudget) take(want uint64) uint64 {
	if b == nil {
		return want
	}
	for {
		used := b.used.Load()
		got := want
		if b.limit > 0 {
			if used >= b.limit {
				return 0
			}
			if got > b.limit-used {
				got = b.limit - used
			}
		}
		if b.used.CompareAndSwap(used, used+got) {
			return got
		}
	}
}

// give returns n bytes taken before.
func (b *WindowBudget) give(n uint64) {
	if b != nil && n > 0 {
		b.used.Add(-n)
	}
}
