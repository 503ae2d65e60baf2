package agent

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStuckAgentTimesOut: an agent that accepts connections but never
// answers (stopped with SIGSTOP, or stuck) fails status, stop and open
// with ErrNoAnswer when the caller's context ends, instead of hanging,
// in a line that names the agent's log.
func TestStuckAgentTimesOut(t *testing.T) {
	dir, ln := fakeAgent(t)
	// The listener's backlog accepts for the kernel; holding the
	// connections open without reading is what a stopped agent does.
	var mu sync.Mutex
	var held []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		for _, c := range held {
			_ = c.Close()
		}
	})

	calls := map[string]func(ctx context.Context) error{
		"status": func(ctx context.Context) error { _, err := GetStatus(ctx, dir); return err },
		"stop":   func(ctx context.Context) error { return Stop(ctx, dir) },
		"open": func(ctx context.Context) error {
			c, err := Open(ctx, dir, noStart, OpenRequest{URL: "ws://127.0.0.1:1"})
			if err == nil {
				_ = c.Close()
			}
			return err
		},
	}
	for name, call := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		done := make(chan error, 1)
		go func() { done <- call(ctx) }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNoAnswer) {
				t.Errorf("%s against a stuck agent: %v, want ErrNoAnswer", name, err)
			} else if log := filepath.Join(dir, LogName); !strings.Contains(err.Error(), log) {
				t.Errorf("%s against a stuck agent: %q does not name its log %s", name, err, log)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%s against a stuck agent still waits a minute after its context ended", name)
		}
		cancel()
	}
}

// TestEnsureDirRefusesLongPaths: a directory whose socket path the
// kernel would refuse fails at once, not after the agent's start-up wait.
func TestEnsureDirRefusesLongPaths(t *testing.T) {
	dir := filepath.Join(shortDir(t), strings.Repeat("d", maxSocketPath))
	err := EnsureDir(dir)
	if err == nil || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("EnsureDir(%d-byte path): %v, want too long", len(dir), err)
	}
}
