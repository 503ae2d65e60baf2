//go:build !windows

package agent

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"syscall"
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
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	proxyStdout, sshSide := os.NewFile(uintptr(fds[0]), "proxy-stdout"), os.NewFile(uintptr(fds[1]), "ssh")
	defer proxyStdout.Close()
	defer sshSide.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = errR.Close() })
	err = OpenFdpass(context.Background(), r.dir, noStart, r.req, proxyStdout, errW)
	_ = errW.Close()
	if err != nil {
		t.Fatal(err)
	}
	passed := receiveFD(t, sshSide)
	conn, err := net.FileConn(passed)
	_ = passed.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
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
			data := randomBytes(3<<20, 1)
			// Marks in bytes the fault proxy carried, both ways together:
			// cuts while bytes flow each way, at offsets no frame lines
			// up with.
			start := fault.Carried()
			fault.CutAt(start+700_001, start+2_500_003, start+4_900_007)
			end := tc.open(r, t)
			wrote := writeInPieces(end.w, data, end.closeW)
			got, err := io.ReadAll(end.r)
			if err != nil {
				t.Fatalf("read %d of %d bytes, then %v", len(got), len(data), err)
			}
			if werr := <-wrote; werr != nil {
				t.Fatalf("writing: %v", werr)
			}
			if i := firstDiff(got, data); i >= 0 {
				t.Fatalf("echoed %d bytes, want %d; first difference at byte %d", len(got), len(data), i)
			}
			if n := fault.CutsAt(); n != 3 {
				t.Fatalf("the fault proxy cut %d times, want 3", n)
			}
			end.finished(t)
		})
	}
}

// firstDiff is the offset of the first byte where got and want differ,
// a length difference included, or -1.
func firstDiff(got, want []byte) int {
	if bytes.Equal(got, want) {
		return -1
	}
	n := min(len(got), len(want))
	for i := range n {
		if got[i] != want[i] {
			return i
		}
	}
	return n
}

func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// writeInPieces writes data to w in pieces of growing sizes, so that cuts
// land inside and between frames, and sends the outcome on the channel
// returned; closeW, if not nil, follows the last piece.
func writeInPieces(w io.Writer, data []byte, closeW func() error) <-chan error {
	wrote := make(chan error, 1)
	go func() {
		for off, n := 0, 1; off < len(data); off, n = off+n, n%7919+1 {
			n = min(n, len(data)-off)
			if _, err := w.Write(data[off : off+n]); err != nil {
				wrote <- err
				return
			}
		}
		if closeW != nil {
			wrote <- closeW()
			return
		}
		wrote <- nil
	}()
	return wrote
}

// received is what a target read from its client to the client's EOF.
type received struct {
	data []byte
	err  error
}

// replyAfterEOF is a target that reads its client to the client's EOF,
// reports what it read, and only then sends reply and closes: its reply
// flows on a stream already half-closed.
func replyAfterEOF(t *testing.T, reply []byte) (string, <-chan received) {
	got := make(chan received, 1)
	srv := testutil.Serve(t, func(c net.Conn) {
		b, err := io.ReadAll(c)
		got <- received{b, err}
		_, _ = c.Write(reply)
	})
	return srv.Addr, got
}

// firstThenRead is a target that sends its data first and half-closes,
// then reads its client to the client's EOF and reports what it read.
func firstThenRead(t *testing.T, first []byte) (string, <-chan received) {
	got := make(chan received, 1)
	srv := testutil.Serve(t, func(c net.Conn) {
		_, _ = c.Write(first)
		_ = c.(*net.TCPConn).CloseWrite()
		b, err := io.ReadAll(c)
		got <- received{b, err}
	})
	return srv.Addr, got
}

func awaitReceived(t *testing.T, ch <-chan received, want []byte) {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("the target read %d bytes, then %v; want %d and EOF", len(r.data), r.err, len(want))
		}
		if i := firstDiff(r.data, want); i >= 0 {
			t.Fatalf("the target read %d bytes, want %d; first difference at byte %d", len(r.data), len(want), i)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the target did not reach its client's EOF")
	}
}

// ssh's EOF reaches the target as the stream's, on every hand-off path,
// and the reply the target sends only after it flows back in full, to
// ssh's EOF, across cuts the session resumes from: one while ssh sends,
// one while the reply flows.
func TestHandoffSSHHalfCloseThenReplyAcrossCuts(t *testing.T) {
	for _, tc := range handedOff {
		t.Run(tc.name, func(t *testing.T) {
			up, reply := randomBytes(1<<20, 2), randomBytes(2<<20, 3)
			target, got := replyAfterEOF(t, reply)
			r, fault := newResumeHandoffRig(t, target, nil)
			start := fault.Carried() // before the open: the target may send at once
			fault.CutAt(start+400_009, start+1_900_013)
			end := tc.open(r, t)
			wrote := writeInPieces(end.w, up, end.closeW)
			if err := <-wrote; err != nil {
				t.Fatalf("writing: %v", err)
			}
			awaitReceived(t, got, up)
			back, err := io.ReadAll(end.r)
			if err != nil {
				t.Fatalf("read %d of the %d bytes of the reply, then %v", len(back), len(reply), err)
			}
			if i := firstDiff(back, reply); i >= 0 {
				t.Fatalf("read %d bytes of reply, want %d; first difference at byte %d", len(back), len(reply), i)
			}
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
			first, after := randomBytes(2<<20, 4), randomBytes(1<<20, 5)
			target, got := firstThenRead(t, first)
			r, fault := newResumeHandoffRig(t, target, nil)
			start := fault.Carried() // before the open: the target may send at once
			fault.CutAt(start+900_011, start+2_600_017)
			end := tc.open(r, t)
			down, err := io.ReadAll(end.r)
			if err != nil {
				t.Fatalf("read %d of the %d bytes the target sent, then %v", len(down), len(first), err)
			}
			if i := firstDiff(down, first); i >= 0 {
				t.Fatalf("read %d bytes, want %d; first difference at byte %d", len(down), len(first), i)
			}
			if err := <-writeInPieces(end.w, after, end.closeW); err != nil {
				t.Fatalf("writing after the target's EOF: %v", err)
			}
			awaitReceived(t, got, after)
			if n := fault.CutsAt(); n != 2 {
				t.Fatalf("the fault proxy cut %d times, want 2 (carried %d since the start)", n, fault.Carried()-start)
			}
			end.finished(t)
		})
	}
}
