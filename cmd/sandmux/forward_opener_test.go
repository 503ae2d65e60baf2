package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/netem"
	"github.com/sandmux/sandmux/internal/testutil"
)

// A --no-agent forward's connection that arrives while its session is
// being resumed, and whose session then cannot be resumed (the server
// restarted meanwhile), is carried on a fresh session: nothing reached
// the target yet, so resetting it, as it used to be, was not needed.
func TestForwardOpenerOutlivesALostSession(t *testing.T) {
	srv := testutil.RestartableServer(t)
	fault, err := netem.Start(netem.Config{Target: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fault.Close() })

	cfg := client.DefaultConfig()
	cfg.URL = "ws://" + fault.Addr()
	cfg.Backoff = client.Backoff{Min: 20 * time.Millisecond, Max: 100 * time.Millisecond, StableAfter: time.Second}
	o := &sessionOpener{cfg: cfg, timeout: 20 * time.Second}
	defer o.close()
	echoThrough(t, o, "before")
	sess := func() *client.Session { o.mu.Lock(); defer o.mu.Unlock(); return o.sess }

	srv.SetDown(true)
	fault.Cut()
	if !testutil.Poll(10*time.Second, func() bool { s := sess(); return s.Resuming() && s.ResumeError() != nil }) {
		t.Fatal("the session is not being resumed")
	}
	// The connection arrives during the outage; the server comes back
	// restarted, without the session.
	done := make(chan struct{})
	go func() {
		defer close(done)
		echoThrough(t, o, "during")
	}()
	testutil.WaitFor(t, 10*time.Second, "the open to wait on the session", func() bool { return sess().Mux().NumStreams() > 0 })
	srv.Restart()
	srv.SetDown(false)
	<-done
}

func echoThrough(t *testing.T, o *sessionOpener, msg string) {
	t.Helper()
	c, err := o.open(context.Background(), "")
	if err != nil {
		t.Errorf("open %s: %v", msg, err)
		return
	}
	defer c.Close()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Errorf("write %s: %v", msg, err)
		return
	}
	_ = c.(interface{ CloseWrite() error }).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil || string(b) != msg {
		t.Errorf("echo %s: %q, %v", msg, b, err)
	}
}

// -L 0.0.0.0:P listens on every IPv4 address only, as ssh -L does; Go's
// "tcp" would listen on every IPv6 address too, exposing more than asked.
func TestListenNetwork(t *testing.T) {
	for addr, want := range map[string]string{
		"0.0.0.0:22": "tcp4", "[::]:22": "tcp", ":22": "tcp", "127.0.0.1:22": "tcp", "[::1]:22": "tcp", "localhost:22": "tcp",
	} {
		if got := listenNetwork(addr); got != want {
			t.Errorf("listenNetwork(%q) = %q, want %q", addr, got, want)
		}
	}
}
