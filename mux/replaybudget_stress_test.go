package mux

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

// budgetTestResumable is a detached Resumable sharing budget, closed when
// the test ends: nothing it sends is acknowledged but by hand (ackSent).
func budgetTestResumable(t *testing.T, budget *ReplayBudget) *Resumable {
	t.Helper()
	cfg := DefaultResumeConfig()
	cfg.Grace, cfg.Budget = time.Minute, budget
	r, err := NewResumable(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// ackSent acknowledges everything r has sent, as its peer would.
func ackSent(r *Resumable) error {
	r.mu.Lock()
	v := r.sent
	r.mu.Unlock()
	return r.onAck(v)
}

// budgetWaits reports whether r is registered to be woken by b.
func budgetWaits(b *ReplayBudget, r *Resumable) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.waiting[r]
	return ok
}

// wantBudgetEmpty fails unless b counts nothing and wakes no one.
func wantBudgetEmpty(t *testing.T, b *ReplayBudget) {
	t.Helper()
	b.mu.Lock()
	used, waiting := b.used, len(b.waiting)
	b.mu.Unlock()
	if used != 0 || waiting != 0 {
		t.Fatalf("budget in use %d with %d waiting after every Resumable ended, want 0 and 0", used, waiting)
	}
}

// writeBackground writes n messages of msg bytes to r in a goroutine and
// reports its end.
func writeBackground(r *Resumable, n, msg int) <-chan error {
	done := make(chan error, 1)
	go func() {
		for range n {
			if _, err := r.Write(make([]byte, msg)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}

// budgetMsg is the budget tests' message: MinInFlight is two of them.
const budgetMsg = 256 << 10

// budgetWaiter returns a budget of four messages, spent by full (two of
// its own, two of the budget's), and a writer of three messages on waiter
// that has sent its own two and waits for the budget for its third.
func budgetWaiter(t *testing.T) (budget *ReplayBudget, full, waiter *Resumable, wrote <-chan error) {
	t.Helper()
	budget = NewReplayBudget(4 * budgetMsg)
	full, waiter = budgetTestResumable(t, budget), budgetTestResumable(t, budget)
	if err := <-writeBackground(full, 4, budgetMsg); err != nil {
		t.Fatal(err)
	}
	wrote = writeBackground(waiter, 3, budgetMsg)
	if !pollUntil(5*time.Second, func() bool { return budgetWaits(budget, waiter) }) {
		t.Fatal("the third message does not wait for the spent budget")
	}
	return budget, full, waiter, wrote
}

// A writer that waits for the budget when its own Resumable ends returns
// the end's error; the bytes it held and its place among the waiters go.
func TestReplayBudgetWaiterEnds(t *testing.T) {
	budget, hog, r, wrote := budgetWaiter(t)
	cause := errors.New("killed")
	r.Fail(cause)
	select {
	case err := <-wrote:
		if !errors.Is(err, cause) {
			t.Fatalf("the waiting write returned %v, want %v", err, cause)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write still waits after its Resumable failed")
	}
	if got := budget.InUse(); got != 4*budgetMsg {
		t.Fatalf("budget in use %d, want the other's %d", got, 4*budgetMsg)
	}
	_ = hog.Close()
	wantBudgetEmpty(t, budget)
}

// A resume whose peer received what was sent while it was away (Attach's
// trim) gives that room back to the budget and wakes another Resumable's
// writer waiting for it.
func TestReplayBudgetResumeWakesWaiter(t *testing.T) {
	budget, a, b, wrote := budgetWaiter(t)
	cli, srv := wsPair(t)
	if _, err := a.Attach(Link{WS: srv}, 4*budgetMsg, nil); err != nil { // the peer has it all
		t.Fatal(err)
	}
	defer cli.CloseNow()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("b's write still waits after a's resume freed the budget")
	}
	if got := budget.InUse(); got != 3*budgetMsg {
		t.Fatalf("budget in use %d, want b's %d", got, 3*budgetMsg)
	}
	a.Fail(net.ErrClosed) // no END: this test's peer does not read
	_ = b.Close()
	wantBudgetEmpty(t, budget)
}

// Many Resumables churn through a small budget at once: some have peers
// that acknowledge and must always finish (each may have MinInFlight of
// its own in flight, whatever the others hold), others never acknowledge
// and end while their writers wait for the budget. Afterwards the budget
// counts nothing and wakes no one.
func TestReplayBudgetChurn(t *testing.T) {
	budget := NewReplayBudget(1 << 20)
	sizes := []int{1, 100, 4 << 10, 60 << 10, 256 << 10, 300 << 10}
	const workers, rounds, writes = 6, 4, 40
	errs := make(chan error, workers*rounds)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for round := range rounds {
				r := budgetTestResumable(t, budget)
				done := make(chan error, 1)
				go func() {
					for range writes {
						if _, err := r.Write(make([]byte, sizes[rng.IntN(len(sizes))])); err != nil {
							done <- err
							return
						}
					}
					done <- nil
				}()
				if (w+round)%3 == 0 {
					errs <- endHog(budget, r, done)
				} else {
					errs <- ackUntilDone(r, done)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	wantBudgetEmpty(t, budget)
}

// endHog ends r, whose peer never acknowledges, once its writer waits for
// the budget (or has finished), and checks that the writer returns.
func endHog(budget *ReplayBudget, r *Resumable, done <-chan error) error {
	var finished error
	waits := pollUntil(10*time.Second, func() bool {
		select {
		case finished = <-done:
			return true
		default:
			return budgetWaits(budget, r)
		}
	})
	if !waits {
		return errors.New("a hog neither waits for the budget nor finishes")
	}
	_ = r.Close()
	if finished != nil {
		return fmt.Errorf("a hog's write failed before it was ended: %w", finished)
	}
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("a hog's waiting write returned %w, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		return errors.New("a hog's write still waits after it was closed")
	}
	return nil
}

// ackUntilDone acknowledges what r sends, as a peer a millisecond away
// would, until its writer finishes, then closes r.
func ackUntilDone(r *Resumable, done <-chan error) error {
	defer r.Close()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			if err := ackSent(r); err != nil {
				return err
			}
		case <-timeout:
			return errors.New("a Resumable whose peer acknowledges is starved by the others")
		}
	}
}
