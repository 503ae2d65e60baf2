package main

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/netem"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/server"
)

// resumingForward is a --no-agent forward whose session reaches a sandmux
// server in front of target (the echo target when "") through a fault
// proxy, with the server's grace on: a cut of the WebSocket is resumed
// from. connect carries one local connection through it, as one its
// listener accepted, and returns the client's end; quiet waits for the
// forward to finish with it and checks that it printed nothing.
type resumingForward struct {
	fault *netem.Proxy
	f     *forwarder
	errw  testutil.Buffer
	wg    sync.WaitGroup
}

func newResumingForward(t *testing.T, target string) *resumingForward {
	t.Helper()
	_, url := testutil.SandmuxServer(t, func(c *server.Config) {
		if target != "" {
			c.Target = target
		}
	})
	fault, err := netem.Start(netem.Config{Target: strings.TrimPrefix(url, "ws://")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fault.Close() })
	cfg := client.DefaultConfig()
	cfg.URL = "ws://" + fault.Addr()
	o := &sessionOpener{cfg: cfg, timeout: 10 * time.Second}
	rf := &resumingForward{fault: fault}
	rf.f = &forwarder{opener: o, host: "box", errw: &rf.errw}
	t.Cleanup(o.close)
	return rf
}

func (rf *resumingForward) connect(t *testing.T) *net.TCPConn {
	t.Helper()
	local, accepted := tcpPair(t)
	_ = local.SetDeadline(time.Now().Add(20 * time.Second))
	rf.wg.Go(func() { rf.f.handle(context.Background(), accepted, forwardSpec{Listen: "l", Target: ""}) })
	return local
}

// quiet waits for the forward to finish its connection and fails the
// test if it printed anything: every cut was resumed from.
func (rf *resumingForward) quiet(t *testing.T) {
	t.Helper()
	rf.wg.Wait()
	if s := rf.errw.String(); s != "" {
		t.Fatalf("the forward printed %q; want nothing, the session was resumed", s)
	}
}

// cutAt arms cuts at the byte counts at, from now, and checks at the
// test's end that want of them were made.
func (rf *resumingForward) cutAt(t *testing.T, want int64, at ...int64) {
	start := rf.fault.Carried()
	for i := range at {
		at[i] += start
	}
	rf.fault.CutAt(at...)
	t.Cleanup(func() {
		if n := rf.fault.CutsAt(); n != want && !t.Failed() {
			t.Errorf("the fault proxy cut %d times, want %d", n, want)
		}
	})
}

// A --no-agent forward's connection, carried by its own session rather
// than handed to the agent (agent/handoff_resume_test.go covers that),
// moves its bytes byte-exact both ways across WebSocket cuts the session
// resumes from, with half-close carried each way in either order.
func TestForwardNoAgentAcrossResumedCuts(t *testing.T) {
	t.Run("both ways then client EOF", func(t *testing.T) {
		rf := newResumingForward(t, "")
		rf.cutAt(t, 3, 700_001, 2_500_003, 4_900_007)
		local := rf.connect(t)
		data := testutil.RandomBytes(3<<20, 1)
		wrote := testutil.WriteInPieces(local, data, local.CloseWrite)
		testutil.ReadAllWant(t, local, data, "the echo")
		if err := <-wrote; err != nil {
			t.Fatalf("writing: %v", err)
		}
		rf.quiet(t)
	})
	t.Run("client EOF then reply", func(t *testing.T) {
		up, reply := testutil.RandomBytes(1<<20, 2), testutil.RandomBytes(2<<20, 3)
		target, got := testutil.ReplyAfterEOF(t, reply)
		rf := newResumingForward(t, target.Addr)
		rf.cutAt(t, 2, 400_009, 1_900_013)
		local := rf.connect(t)
		if err := <-testutil.WriteInPieces(local, up, local.CloseWrite); err != nil {
			t.Fatalf("writing: %v", err)
		}
		testutil.AwaitReceived(t, got, up)
		testutil.ReadAllWant(t, local, reply, "the reply")
		rf.quiet(t)
	})
	t.Run("target EOF then client data", func(t *testing.T) {
		first, after := testutil.RandomBytes(2<<20, 4), testutil.RandomBytes(1<<20, 5)
		target, got := testutil.FirstThenRead(t, first)
		rf := newResumingForward(t, target.Addr)
		rf.cutAt(t, 2, 900_011, 2_600_017)
		local := rf.connect(t)
		testutil.ReadAllWant(t, local, first, "what the target sent first")
		if err := <-testutil.WriteInPieces(local, after, local.CloseWrite); err != nil {
			t.Fatalf("writing after the target's EOF: %v", err)
		}
		testutil.AwaitReceived(t, got, after)
		rf.quiet(t)
	})
}
