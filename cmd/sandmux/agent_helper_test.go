package main

import (
	"context"
	"testing"
	"time"

	"github.com/sandmux/sandmux/agent"
	"github.com/sandmux/sandmux/internal/testutil"
)

// serveTestAgent runs an agent in dir in this process and returns once it
// answers; the returned stop ends it and reports how it ended. Deferred
// before the directory's removal, it runs first.
func serveTestAgent(t *testing.T, dir string) (stop func()) {
	t.Helper()
	acfg := agent.DefaultConfig(dir)
	acfg.Persist = 0
	a, err := agent.New(acfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()
	testutil.WaitFor(t, 5*time.Second, "the agent to come up", func() bool {
		_, err := agent.GetStatus(context.Background(), dir)
		return err == nil
	})
	return func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("agent: %v", err)
		}
	}
}
