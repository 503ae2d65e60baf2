package yamux

import (
	"runtime"
	"testing"
	"time"
)

// Sessions sharing a WindowBudget grow their streams' windows within it
// together, each also within its own MaxSessionWindowGrowth: a window
// stops growing once the budget is spent, and grows again once a closed
// stream has given its growth back.
func TestWindowBudgetSharedBySessions(t *testing.T) {
	const mib = 1 << 20
	budget := NewWindowBudget(3 * mib)
	a := tuneSession(mib, 8*mib, 4*mib)
	b := tuneSession(mib, 8*mib, 4*mib)
	a.config.WindowBudget, b.config.WindowBudget = budget, budget
	setRTT(a, time.Hour)
	setRTT(b, time.Hour)
	sa := newStream(a, 1, streamEstablished)
	sb := newStream(b, 1, streamEstablished)
	a.streams[sa.id], b.streams[sb.id] = sa, sb

	consume(sa, mib)   // 1 → 2 MiB
	consume(sa, 2*mib) // 2 → 4 MiB: 3 MiB of the budget
	consume(sb, mib)   // the budget is spent: no growth
	if sa.tuner.max != 4*mib || sb.tuner.max != mib {
		t.Fatalf("windows %d and %d, want %d and %d", sa.tuner.max, sb.tuner.max, 4*mib, mib)
	}
	if got := budget.InUse(); got != 3*mib {
		t.Fatalf("budget in use %d, want %d", got, 3*mib)
	}
	if got := b.windowGrowth.Load(); got != 0 {
		t.Fatalf("session b's growth %d after the shared budget refused it, want 0", got)
	}

	a.closeStream(sa.id) // drained: its growth goes back to both
	if got := budget.InUse(); got != 0 {
		t.Fatalf("budget in use %d after the grown stream closed, want 0", got)
	}
	if got := a.windowGrowth.Load(); got != 0 {
		t.Fatalf("session a's growth %d after its stream closed, want 0", got)
	}
	consume(sb, mib)
	if sb.tuner.max != 2*mib || budget.InUse() != mib {
		t.Fatalf("window %d, budget %d once the budget was free, want %d and %d", sb.tuner.max, budget.InUse(), 2*mib, mib)
	}

	// Part of a doubling: what the budget has left.
	consume(sb, 2*mib) // wants 2 MiB more, 2 MiB left
	consume(sb, 4*mib) // wants 4 MiB more, none left
	if sb.tuner.max != 4*mib || budget.InUse() != 3*mib {
		t.Fatalf("window %d, budget %d, want %d and %d", sb.tuner.max, budget.InUse(), 4*mib, 3*mib)
	}
}

// A session that closes gives its streams' growth back to the shared
// budget at once, not when its streams are garbage: here a spare start,
// on a stream the application still holds, unclosed.
func TestWindowBudgetReturnsAtSessionClose(t *testing.T) {
	budget := NewWindowBudget(64 << 20)
	conf := func() *Config {
		c := spareConf()
		c.WindowBudget = budget
		return c
	}
	cc, sc := testConnTCP(t)
	client, server := testClientServerConfig(t, cc, sc, conf(), conf())
	c, err := client.OpenStream()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	s, err := server.AcceptStream()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	want := uint64(2 * (spareTestSpare - spareTestStart)) // a spare start on each side
	waitUntil(t, "both sides start spare", func() bool { return budget.InUse() == want })
	client.Close()
	server.Close()
	waitUntil(t, "the growth goes back as the sessions close", func() bool { return budget.InUse() == 0 })
	runtime.KeepAlive(c)
	runtime.KeepAlive(s)
}
