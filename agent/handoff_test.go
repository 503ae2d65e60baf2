//go:build !windows

package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
	"github.com/sandmux/sandmux/server"
	"golang.org/x/sys/unix"
)

// handoffRig is a server in front of an echo target and an agent.
type handoffRig struct {
	dir string
	req OpenRequest
	srv *server.Server
}

func newHandoffRig(t *testing.T) *handoffRig {
	t.Helper()
	srv, url := testutil.SandmuxServer(t, func(c *server.Config) {
		c.ResumeGrace = 0 // a cut ends the streams at once
	})
	dir := shortDir(t)
	runAgent(t, dir, nil)
	return &handoffRig{dir: dir, srv: srv, req: OpenRequest{URL: url, Host: "box", ConnectTimeout: 5 * time.Second}}
}

// open hands p to the agent as a proxy would, and fails unless the agent
// took the pipes over.
func (r *handoffRig) open(t *testing.T, p *testutil.StdioPipes) *Handoff {
	t.Helper()
	conn, h, err := OpenStdio(context.Background(), r.dir, noStart, r.req, p.In, p.Out)
	if err != nil || conn != nil || h == nil {
		t.Fatalf("OpenStdio = %v, %v, %v: want a hand-off", conn, h, err)
	}
	return h
}

func waitDone(t *testing.T, h *Handoff) {
	t.Helper()
	select {
	case <-h.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("no verdict from the agent within 10s")
	}
}

func TestHandoffPipesEchoAndHalfClose(t *testing.T) {
	r := newHandoffRig(t)
	// The first stream warms the session up. The collector is off from
	// there: its finalizers would close a connection or a file leaked
	// but unreachable, which would then pass for closed. Sockets are
	// counted as they are (OpenSockets), and the pipes by whether
	// anything still holds them: the echo target's io.Copy splices TCP
	// to TCP through pipes of the net package's pool, which a stream may
	// add to.
	r.echoHalfClose(t)
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	before := testutil.OpenSockets(t)
	p := r.echoHalfClose(t)
	if !testutil.Poll(5*time.Second, func() bool { return testutil.OpenSockets(t) <= before && p.Held(t) == 0 }) {
		t.Fatalf("%d sockets open after the second stream, %d after the first; %d descriptors on its pipes, want 0",
			testutil.OpenSockets(t), before, p.Held(t))
	}
}

// echoHalfClose hands a pair of pipes to the agent, echoes 1 MiB through
// them, half-closes as ssh does at its end, and wants a clean verdict;
// ssh's ends are closed when it returns, and the Handoff too, as a proxy
// closes it once told.
func (r *handoffRig) echoHalfClose(t *testing.T) *testutil.StdioPipes {
	t.Helper()
	p := testutil.NewStdioPipes(t)
	h := r.open(t, p)
	defer func() { _ = h.Close() }()
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	go func() {
		_, _ = p.ToIn.Write(data)
		_ = p.ToIn.Close() // ssh's EOF: the agent half-closes the stream
	}()
	got, err := io.ReadAll(p.FromOut)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echoed %d bytes, want the %d sent", len(got), len(data))
	}
	waitDone(t, h)
	if err := h.Err(); err != nil {
		t.Fatalf("verdict %v, want a clean end", err)
	}
	_ = p.FromOut.Close()
	return p
}

func TestHandoffSocketHalfClose(t *testing.T) {
	r := newHandoffRig(t)
	// stdin and stdout are one socket, as some callers arrange: closing
	// the stdout descriptor alone would not reach the far end.
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	proxyEnd := os.NewFile(uintptr(fds[0]), "proxy")
	dup, err := syscall.Dup(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	proxyOut := os.NewFile(uintptr(dup), "proxy-out")
	shared, err := syscall.Dup(fds[0]) // the caller's own, which must stay blocking
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(shared)
	sshEnd, err := net.FileConn(os.NewFile(uintptr(fds[1]), "ssh"))
	if err != nil {
		t.Fatal(err)
	}
	defer sshEnd.Close()
	_, h, err := OpenStdio(context.Background(), r.dir, noStart, r.req, proxyEnd, proxyOut)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sshEnd.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	_ = sshEnd.(*net.UnixConn).CloseWrite()
	_ = sshEnd.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(sshEnd)
	if err != nil || string(got) != "ping" {
		t.Fatalf("read %q, %v: want \"ping\" then EOF", got, err)
	}
	waitDone(t, h)
	if err := h.Err(); err != nil {
		t.Fatalf("verdict %v, want a clean end", err)
	}
	if isNonblock(t, shared) {
		t.Fatal("the socket is non-blocking after the verdict, want it blocking as it was")
	}
}

func TestHandoffCutGivesReasonThenEOF(t *testing.T) {
	r := newHandoffRig(t)
	p := testutil.NewStdioPipes(t)
	h := r.open(t, p)
	if _, err := p.ToIn.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := io.ReadFull(p.FromOut, b[:]); err != nil {
		t.Fatal(err)
	}
	_ = r.srv.Close() // ends its sessions; resumption is off
	waitDone(t, h)
	var se *StreamError
	if !errors.As(h.Err(), &se) || se.Reason == "" {
		t.Fatalf("verdict %v, want a *StreamError with the reason", h.Err())
	}
	t.Logf("verdict: %v", se)
	_ = h.Close() // the proxy has printed it
	_ = p.FromOut.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(p.FromOut); err != nil {
		t.Fatalf("stdout after the cut: %v, want EOF", err)
	}
}

func TestHandoffAbortEndsStream(t *testing.T) {
	r := newHandoffRig(t)
	p := testutil.NewStdioPipes(t)
	h := r.open(t, p)
	h.Abort() // the proxy was interrupted: the agent drops the stream
	_ = p.FromOut.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(p.FromOut); err != nil {
		t.Fatalf("stdout after abort: %v, want EOF", err)
	}
	// The agent no longer reads ssh's side: a write fails once the agent
	// closed its copy of the pipe.
	if !testutil.Poll(10*time.Second, func() bool {
		_, err := p.ToIn.Write([]byte("x"))
		return errors.Is(err, syscall.EPIPE)
	}) {
		t.Fatal("stdin pipe still read by the agent 10s after abort")
	}
}

// An agent that predates hand-off ignores the field; the proxy then gets
// the framed stream, and its stdin and stdout stay its own.
func TestHandoffFallsBackOnOldAgent(t *testing.T) {
	dir := shortDir(t)
	oldAgent(t, dir, reply{Version: protoVersion, OK: true}, func(c *net.UnixConn) { // no Handoff
		_, _ = c.Write(frameHeader(frameEOF, 0))
	})
	p := testutil.NewStdioPipes(t)
	conn, h, err := OpenStdio(context.Background(), dir, noStart, OpenRequest{URL: "ws://127.0.0.1:1"}, p.In, p.Out)
	if err != nil {
		t.Fatal(err)
	}
	if h != nil || conn == nil {
		t.Fatalf("OpenStdio = %v, %v: want the framed stream", conn, h)
	}
	defer conn.Close()
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("framed stream: %v, want EOF", err)
	}
	if _, err := p.In.Stat(); err != nil {
		t.Fatalf("stdin closed by a failed hand-off: %v", err)
	}
}

// A proxy whose ssh has exited detaches: the agent answers at once, not
// when the stream ends, and finishes the stream by itself instead of
// cutting it.
func TestHandoffDetach(t *testing.T) {
	r := newHandoffRig(t)
	p := testutil.NewStdioPipes(t)
	h := r.open(t, p)
	p.EchoOnce(t, "before")
	if !h.Detach() {
		t.Fatal("Detach = false: the agent did not offer it")
	}
	// ssh's stdin is still open, so the stream cannot have ended: the
	// verdict is the answer to the detach.
	waitDone(t, h)
	if err := h.Err(); err != nil {
		t.Fatalf("verdict %v, want a clean one", err)
	}
	p.EchoOnce(t, "after")
	_ = p.ToIn.Close()
	if _, err := io.ReadAll(p.FromOut); err != nil {
		t.Fatalf("stdout after ssh's EOF: %v, want EOF", err)
	}
	if !testutil.Poll(10*time.Second, func() bool {
		st, err := GetStatus(context.Background(), r.dir)
		return err == nil && st.Streams == 0
	}) {
		t.Fatal("the detached stream is still open 10s after it ended")
	}
}

// A cut is told before ssh's stdout closes, so before ssh can exit and
// its proxy detach: the detach must not turn it into a clean end.
func TestHandoffDetachKeepsCut(t *testing.T) {
	r := newHandoffRig(t)
	p := testutil.NewStdioPipes(t)
	h := r.open(t, p)
	p.EchoOnce(t, "x")
	_ = r.srv.Close() // ends its sessions; resumption is off
	if _, err := io.ReadAll(p.FromOut); err != nil {
		t.Fatalf("stdout after the cut: %v, want EOF", err)
	}
	h.Detach()
	waitDone(t, h)
	var se *StreamError
	if !errors.As(h.Err(), &se) || se.Reason == "" {
		t.Fatalf("verdict %v, want the cut's *StreamError", h.Err())
	}
}

// An agent that takes the descriptors but predates detach would read the
// byte as the proxy going away, so none is sent to it.
func TestHandoffNoDetachForOldAgent(t *testing.T) {
	dir := shortDir(t)
	got := make(chan int, 1)                                                                        // bytes the old agent read after the hand-off
	oldAgent(t, dir, reply{Version: protoVersion, OK: true, Handoff: true}, func(c *net.UnixConn) { // no Detach
		defer close(got)
		in, out, restore, err := recvStdio(c)
		if err != nil {
			return
		}
		defer restore()
		defer in.Close()
		defer out.Close()
		var b [1]byte
		n, _ := c.Read(b[:])
		got <- n
	})
	p := testutil.NewStdioPipes(t)
	_, h, err := OpenStdio(context.Background(), dir, noStart, OpenRequest{URL: "ws://127.0.0.1:1"}, p.In, p.Out)
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		t.Fatal("OpenStdio: no hand-off")
	}
	if h.Detach() {
		t.Fatal("Detach = true for an agent that did not offer it")
	}
	h.Abort()
	select {
	case n, ok := <-got:
		if !ok {
			t.Fatal("the old agent failed before it could read")
		}
		if n != 0 {
			t.Fatalf("the old agent read %d byte(s) before EOF, want none", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the old agent saw no EOF within 10s of Abort")
	}
}

// oldAgent plays an agent of an earlier release on dir's socket for one
// open request: it answers rep, then hands the connection to serve. The
// test's cleanup stops it and waits for it.
func oldAgent(t *testing.T, dir string, rep reply, serve func(c *net.UnixConn)) {
	t.Helper()
	if err := EnsureDir(dir); err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: SocketPath(dir), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan *net.UnixConn, 1)
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		accepted <- c
		defer c.Close()
		var req request
		if err := readMessage(c, &req); err != nil {
			return
		}
		_ = writeMessage(c, rep)
		serve(c)
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		select {
		case c := <-accepted:
			_ = c.Close() // unblocks serve, should the test have failed first
		default:
		}
		<-served
	})
}

// fakeChunks lends its bytes, then ends with err.
type fakeChunks struct {
	net.Conn
	data     []byte
	err      error
	released int
}

func (f *fakeChunks) ReadChunk() ([]byte, *[]byte, error) {
	if len(f.data) > 0 {
		b := f.data
		f.data = nil
		return b, &b, nil
	}
	return nil, nil, f.err
}

func (f *fakeChunks) ReleaseChunk(token *[]byte) {
	if token != nil {
		f.released++
	}
}

func (f *fakeChunks) CloseWrite() error { return nil }

// A cut read through ReadChunk is told at once, as through Read; the end
// of the data is not, and every chunk lent is given back.
func TestVerdictFirstChunks(t *testing.T) {
	for _, tc := range []struct {
		err  error
		told bool
	}{{mux.ErrSessionEnded, true}, {io.EOF, false}} {
		var told []error
		f := &fakeChunks{data: []byte("abc"), err: tc.err}
		v, ok := mux.Watch(f, func(err error) {
			if cutBy(err) {
				told = append(told, err)
			}
		}).(mux.ChunkReader)
		if !ok {
			t.Fatal("a stream that lends chunks is not watched as one")
		}
		b, token, err := v.ReadChunk()
		if string(b) != "abc" || err != nil {
			t.Fatalf("ReadChunk = %q, %v; want \"abc\"", b, err)
		}
		v.ReleaseChunk(token)
		if _, _, err := v.ReadChunk(); !errors.Is(err, tc.err) {
			t.Fatalf("ReadChunk = %v, want %v", err, tc.err)
		}
		if got := len(told) == 1 && errors.Is(told[0], tc.err); got != tc.told || len(told) > 1 {
			t.Errorf("after %v: told %v, want told: %v", tc.err, told, tc.told)
		}
		if f.released != 1 {
			t.Errorf("%d chunks given back, want 1", f.released)
		}
	}
}

// isNonblock reports whether fd's open file is in non-blocking mode.
func isNonblock(t *testing.T, fd int) bool {
	t.Helper()
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fl&unix.O_NONBLOCK != 0
}

// An agent that predates HTTP proxy support ignores a request's Proxy and
// dials directly, around a proxy the user may be required to use: the
// proxy refuses its stream and says how to get a current agent.
func TestProxyRefusesAnAgentThatIgnoresItsHTTPProxy(t *testing.T) {
	dir := shortDir(t)
	oldAgent(t, dir, reply{Version: protoVersion, OK: true}, func(*net.UnixConn) {}) // no Proxy
	const stop = "sandmux agent --stop --agent-dir /x"
	_, err := Open(context.Background(), dir, noStart, OpenRequest{URL: "ws://box.invalid:8081", Proxy: "http://127.0.0.1:3128", StopCommand: stop})
	if err == nil || !strings.Contains(err.Error(), "predates HTTP proxy support") || !strings.Contains(err.Error(), "`"+stop+"`") {
		t.Fatalf("open through an agent that ignores the proxy: %v (want it to say %s)", err, stop)
	}
}

// A cut's verdict reaches the proxy before ssh's pipes close: ssh exits
// as soon as they do, and hangs up on the proxy, so a proxy slow to be
// scheduled (a busy machine) printed its line after ssh had exited, past
// the shell's prompt or a script's look at ssh's stderr, as a soak saw
// for one ssh in two. The agent keeps the pipes until the proxy has
// taken the verdict (it closes the connection then), for a moment at most.
func TestHandoffCutToldBeforePipesClose(t *testing.T) {
	r := newHandoffRig(t)
	p := testutil.NewStdioPipes(t)
	req := r.req
	req.Handoff = true
	c, rep, err := open(context.Background(), r.dir, noStart, req)
	if err != nil || !rep.Handoff {
		t.Fatalf("open: %v, %+v: want a hand-off", err, rep)
	}
	defer c.Close()
	if err := sendFiles(c, p.In, p.Out); err != nil {
		t.Fatal(err)
	}
	_ = p.In.Close()
	_ = p.Out.Close()
	p.EchoOnce(t, "x")
	_ = r.srv.Close() // ends its sessions; resumption is off
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var verdict reply
	if err := readMessage(c, &verdict); err != nil || verdict.OK || verdict.Error == "" {
		t.Fatalf("verdict %+v, %v: want the cut's reason", verdict, err)
	}
	// The proxy has its verdict but has not closed the connection (not
	// yet printed): ssh's stdout stays open meanwhile.
	_ = p.FromOut.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := io.ReadAll(p.FromOut); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("stdout before the proxy took its verdict: %v, want it still open", err)
	}
	_ = c.Close()
	_ = p.FromOut.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(p.FromOut); err != nil {
		t.Fatalf("stdout after the proxy took its verdict: %v, want EOF", err)
	}
}

// The proxy's side of the same: a Handoff keeps its connection after the
// verdict until Close (the proxy's exit, once it has printed the line),
// and ssh's pipes stay open until then. It closed the connection as soon
// as it had read the verdict, before the line was printed.
func TestHandoffKeepsPipesUntilClose(t *testing.T) {
	r := newHandoffRig(t)
	p := testutil.NewStdioPipes(t)
	h := r.open(t, p)
	p.EchoOnce(t, "x")
	_ = r.srv.Close() // ends its sessions; resumption is off
	waitDone(t, h)
	var se *StreamError
	if !errors.As(h.Err(), &se) {
		t.Fatalf("verdict %v, want the cut's *StreamError", h.Err())
	}
	_ = p.FromOut.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := io.ReadAll(p.FromOut); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("stdout before the proxy closed: %v, want it still open", err)
	}
	_ = h.Close()
	_ = p.FromOut.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(p.FromOut); err != nil {
		t.Fatalf("stdout after the proxy closed: %v, want EOF", err)
	}
}
