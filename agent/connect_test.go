package agent

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A dial whose deadline passed before it was tried (a proxy or `sandmux
// status` starved of CPU on a loaded machine) says so: taken for "no agent
// running", it made status report none while one served, and a proxy
// start a second agent.
func TestConnectPastDeadlineIsNotNotRunning(t *testing.T) {
	dir := shortDir(t)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := connect(ctx, dir)
	if errors.Is(err, ErrNotRunning) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("connect past its deadline: %v, want the deadline, not ErrNotRunning", err)
	}
	started := false
	_, err = Ensure(ctx, dir, func() error { started = true; return nil })
	if started || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ensure past its deadline: started %t, %v; want no start and the deadline", started, err)
	}
	// Without a deadline, no agent is still ErrNotRunning.
	if _, err := connect(context.Background(), dir); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("connect with no agent: %v, want ErrNotRunning", err)
	}
}
