//go:build !windows

package agent

import (
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/netem"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/server"
)

// newResumeHandoffRig is newHandoffRig with the server's grace left on and a fault
// proxy between the agent and the server, so that a cut of the
// WebSocket is resumed from rather than ending the streams on it.
// target, when not "", replaces the echo target; mod, if not nil, is
// applied to the agent's config.
func newResumeHandoffRig(t *testing.T, target string, mod func(*Config)) (*handoffRig, *netem.Proxy) {
	t.Helper()
	srv, url := testutil.SandmuxServer(t, func(c *server.Config) {
		if target != "" {
			c.Target = target
		}
	})
	fault, err := netem.Start(netem.Config{Target: strings.TrimPrefix(url, "ws://")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fault.Close() })
	dir := shortDir(t)
	runAgent(t, dir, mod)
	return &handoffRig{dir: dir, srv: srv, req: OpenRequest{URL: "ws://" + fault.Addr(), Host: "box", ConnectTimeout: 5 * time.Second,
		Resume: &ResumeOptions{Timeout: 10 * time.Second}}}, fault
}

// sshEnd is what ssh (or a forward's client) holds of a handed-off
// stream: it writes, half-closes, and reads to the end.
type sshEnd struct {
	w        io.Writer
	closeW   func() error
	r        io.Reader
	finished func(t *testing.T) // checks how the stream ended for the user
	die      func()             // ends it as the local side's death does
}

// openPipes hands off two pipes, as `sandmux proxy` under ssh does.
func (r *handoffRig) openPipes(t *testing.T) sshEnd {
	p := testutil.NewStdioPipes(t)
	h := r.open(t, p)
	_ = p.FromOut.SetReadDeadline(time.Now().Add(20 * time.Second))
	return sshEnd{w: p.ToIn, closeW: p.ToIn.Close, r: p.FromOut, finished: cleanVerdict(h), die: func() {
		// ssh killed: the kernel closes its ends of both pipes.
		_ = p.ToIn.Close()
		_ = p.FromOut.Close()
	}}
}

// openTCPEnd hands off a TCP connection, as `sandmux forward` does.
func (r *handoffRig) openTCPEnd(t *testing.T) sshEnd {
	local, h := r.openTCP(t)
	_ = local.SetDeadline(time.Now().Add(20 * time.Second))
	return sshEnd{w: local, closeW: local.CloseWrite, r: local, finished: cleanVerdict(h), die: func() {
		// The forward's client resets its connection.
		_ = local.SetLinger(0)
		_ = local.Close()
	}}
}

// openFdpassEnd opens a stream as an --fdpass proxy does, and returns the
// connection ssh is passed; ssh's stderr must stay empty.
func (r *handoffRig) openFdpassEnd(t *testing.T) sshEnd {
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = errR.Close() })
	sshSide, err := openFdpass(t, r, errW)
	_ = errW.Close()
	if err != nil {
		t.Fatal(err)
	}
	conn := passedConn(t, sshSide)
	_ = sshSide.Close() // ssh keeps only the connection
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	uc := conn.(*net.UnixConn)
	return sshEnd{w: uc, closeW: uc.CloseWrite, r: uc, finished: func(t *testing.T) {
		t.Helper()
		_ = errR.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(errR)
		_ = errR.Close()
		if err != nil || len(got) != 0 {
			t.Fatalf("ssh's stderr %q (%v), want nothing said and closed", got, err)
		}
	}, die: func() { _ = uc.Close() }}
}

func cleanVerdict(h *Handoff) func(t *testing.T) {
	return func(t *testing.T) {
		t.Helper()
		waitDone(t, h)
		_ = h.Close() // told, as a proxy does
		if err := h.Err(); err != nil {
			t.Fatalf("verdict %v, want a clean end: the session was resumed", err)
		}
	}
}

// handedOff are the ways a local end is handed to the agent.
var handedOff = []struct {
	name string
	open func(*handoffRig, *testing.T) sshEnd
}{
	{"pipes", (*handoffRig).openPipes},
	{"tcp", (*handoffRig).openTCPEnd},
	{"fdpass", (*handoffRig).openFdpassEnd},
}

// Every path that hands the local end to the agent (a proxy's pipes, a
// forward's TCP connection, an --fdpass proxy's socket) carries its bytes
// byte-exact both ways across WebSocket cuts the session resumes from,
// with ssh's half-close carried as the stream's after the last of them
// and the reply read in full after it.
func TestHandoffBytesExactAcrossResumedCuts(t *testing.T) {
	for _, tc := range handedOff {
		t.Run(tc.name, func(t *testing.T) {
			r, fault := newResumeHandoffRig(t, "", nil)
			data := testutil.RandomBytes(3<<20, 1)
			// Marks in bytes the fault proxy carried, both ways together:
			// cuts while bytes flow each way, at offsets no frame lines
			// up with.
			start := fault.Carried()
			fault.CutAt(start+700_001, start+2_500_003, start+4_900_007)
			end := tc.open(r, t)
			wrote := testutil.WriteInPieces(end.w, data, end.closeW)
			testutil.ReadAllWant(t, end.r, data, "the echo")
			if err := <-wrote; err != nil {
				t.Fatalf("writing: %v", err)
			}
			if n := fault.CutsAt(); n != 3 {
				t.Fatalf("the fault proxy cut %d times, want 3", n)
			}
			end.finished(t)
		})
	}
}

// ssh's EOF reaches the target as the stream's, on every hand-off path,
// and the reply the target sends only after it flows back in full, to
// ssh's EOF, across cuts the session resumes from: one while ssh sends,
// one while the reply flows.
func TestHandoffSSHHalfCloseThenReplyAcrossCuts(t *testing.T) {
	for _, tc := range handedOff {
		t.Run(tc.name, func(t *testing.T) {
			up, reply := testutil.RandomBytes(1<<20, 2), testutil.RandomBytes(2<<20, 3)
			target, got := testutil.ReplyAfterEOF(t, reply)
			r, fault := newResumeHandoffRig(t, target.Addr, nil)
			start := fault.Carried() // before the open: the target may send at once
			fault.CutAt(start+400_009, start+1_900_013)
			end := tc.open(r, t)
			wrote := testutil.WriteInPieces(end.w, up, end.closeW)
			if err := <-wrote; err != nil {
				t.Fatalf("writing: %v", err)
			}
			testutil.AwaitReceived(t, got, up)
			testutil.ReadAllWant(t, end.r, reply, "the reply")
			if n := fault.CutsAt(); n != 2 {
				t.Fatalf("the fault proxy cut %d times, want 2 (carried %d since the start)", n, fault.Carried()-start)
			}
			end.finished(t)
		})
	}
}

// The target's half-close reaches ssh as EOF after every byte before it,
// while ssh's own direction stays open: what ssh sends after it still
// reaches the target, to ssh's EOF, across cuts the session resumes from.
func TestHandoffTargetHalfCloseFirstAcrossCuts(t *testing.T) {
	for _, tc := range handedOff {
		t.Run(tc.name, func(t *testing.T) {
			first, after := testutil.RandomBytes(2<<20, 4), testutil.RandomBytes(1<<20, 5)
			target, got := testutil.FirstThenRead(t, first)
			r, fault := newResumeHandoffRig(t, target.Addr, nil)
			start := fault.Carried() // before the open: the target may send at once
			fault.CutAt(start+900_011, start+2_600_017)
			end := tc.open(r, t)
			testutil.ReadAllWant(t, end.r, first, "what the target sent first")
			if err := <-testutil.WriteInPieces(end.w, after, end.closeW); err != nil {
				t.Fatalf("writing after the target's EOF: %v", err)
			}
			testutil.AwaitReceived(t, got, after)
			if n := fault.CutsAt(); n != 2 {
				t.Fatalf("the fault proxy cut %d times, want 2 (carried %d since the start)", n, fault.Carried()-start)
			}
			end.finished(t)
		})
	}
}
