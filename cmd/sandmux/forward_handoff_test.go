package main

import (
	"context"
	"errors"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/sandmux/sandmux/agent"
	"github.com/sandmux/sandmux/internal/testutil"
)

// A forward lets go of its connection to the agent once a connection it
// handed over has ended: it kept one descriptor for every connection it
// had ever carried, so a long-lived forward (an app's connections come
// and go by the thousand) ran out of them and stopped accepting, or held
// them until a garbage collection, whose finalizers close what nothing
// reaches: the collector is off here, as it is in effect for long
// stretches in a forward that allocates little (20 connections left 20
// more descriptors open in `sandmux forward`).
func TestForwardHandoffLetsGoOfTheAgent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	_, url := testutil.SandmuxServer(t, nil)
	dir, err := os.MkdirTemp("", "smxh") // short enough for a socket path
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	defer serveTestAgent(t, dir)()
	noStart := func() error { return errors.New("the test runs its agent itself") }
	f := &forwarder{errw: io.Discard, host: "box", opener: &agentOpener{dir: dir, start: noStart, timeout: 5 * time.Second,
		req: agent.OpenRequest{URL: url, Host: "box", ConnectTimeout: 5 * time.Second}}}
	carry := func() {
		t.Helper()
		local, accepted := tcpPair(t)
		var wg sync.WaitGroup
		wg.Go(func() { f.handle(context.Background(), accepted, forwardSpec{Listen: "l", Target: ""}) })
		_ = local.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := local.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		_ = local.CloseWrite()
		if b, err := io.ReadAll(local); string(b) != "x" || err != nil {
			t.Fatalf("echo through the forward: %q, %v", b, err)
		}
		_ = local.Close()
		wg.Wait()
	}
	carry() // the session's own descriptors
	before := testutil.OpenSockets(t)
	const n = 10
	for range n {
		carry()
	}
	if !testutil.Poll(5*time.Second, func() bool { return testutil.OpenSockets(t) <= before }) {
		t.Fatalf("%d sockets open after %d more connections, %d before", testutil.OpenSockets(t), n, before)
	}
}
