package mux

import (
	"testing"
	"time"
)

// Resumables sharing a ReplayBudget: each may always have MinInFlight
// unacknowledged; beyond, a write waits for room in the budget, and is
// woken by another Resumable's acknowledgement or end, which give room
// back; every byte counts until acknowledged or dropped with its
// Resumable.
func TestReplayBudgetSharedByResumables(t *testing.T) {
	const msg = 256 << 10
	budget := NewReplayBudget(4 * msg)
	write := func(r *Resumable, n int) {
		t.Helper()
		for range n {
			if _, err := r.Write(make([]byte, msg)); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantInUse := func(want uint64) {
		t.Helper()
		if got := budget.InUse(); got != want {
			t.Fatalf("budget in use %d, want %d", got, want)
		}
	}
	// Detached, so that nothing is acknowledged but by hand; MinInFlight
	// is two messages.
	a, b := budgetTestResumable(t, budget), budgetTestResumable(t, budget)
	write(a, 4) // two of its own, two of the budget's: full
	write(b, 2) // its own, beyond the full budget
	wantInUse(6 * msg)
	if b.Room(msg) {
		t.Fatal("room for a third message of b's with the budget spent")
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := b.Write(make([]byte, msg))
		wrote <- err
	}()
	if err := a.onAck(msg); err != nil {
		t.Fatal(err)
	}
	wantInUse(5 * msg) // still no room: three of a's and two of b's
	_ = a.Close()      // its unacknowledged bytes go back, and b's write goes on
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("b's write still waits after a ended")
	}
	wantInUse(3 * msg)
	if err := b.onAck(3 * msg); err != nil {
		t.Fatal(err)
	}
	wantInUse(0)
}
