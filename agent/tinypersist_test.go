package agent

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
)

// A --persist under 4 ns made the reaper's ticker 0, which panics:
// `sandmux agent --foreground --persist 1ns` crashed with a stack trace.
func TestTinyPersistDoesNotPanic(t *testing.T) {
	dir := shortDir(t)
	cfg := DefaultConfig(dir)
	cfg.Persist = time.Nanosecond
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	if !testutil.Poll(5*time.Second, func() bool { _, err := os.Stat(SocketPath(dir)); return err == nil }) {
		t.Fatal("agent did not listen")
	}
	// Serve waits for its reaper, which makes its ticker first.
	cancel()
	<-done
}
