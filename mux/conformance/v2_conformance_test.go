package conformance

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/server"
)

// startV2 makes a new v2 session on url and its yamux client.
func startV2(t *testing.T, ctx context.Context, url string, hdr http.Header) (*resumable, *miniSession) {
	t.Helper()
	r, err := dialV2(ctx, url, hdr)
	if err != nil {
		t.Fatalf("v2 upgrade: %v", err)
	}
	s := newMiniSession(r)
	t.Cleanup(func() { _ = s.Close() })
	return r, s
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// TestSpecV2NewSession opens a stream before the WELCOME arrives (§9.2
// allows it), checks the WELCOME and that the server's ACKs count our
// session bytes (§9.3).
func TestSpecV2NewSession(t *testing.T) {
	ctx := testCtx(t)
	echo := testutil.EchoServer(t)
	_, url := testutil.SandmuxServer(t, func(c *server.Config) {
		c.Target = echo.Addr
		c.ResumeGrace = 90 * time.Second
	})
	r, s := startV2(t, ctx, url, nil)
	st, err := s.open(request("")) // goes out right behind the HELLO
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.welcomeOf(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if w.GraceMS != 90000 {
		t.Errorf("WELCOME grace = %d ms, want 90000 (§9.1)", w.GraceMS)
	}
	rep, err := readReply(streamReader{ctx, st})
	if err != nil || rep.Status != 0 || rep.Target != echo.Addr {
		t.Fatalf("reply %+v, %v", rep, err)
	}
	echoRoundTrip(t, ctx, st, randomBytes(t, 600<<10))
	err = r.waitFor(ctx, func() bool { return r.peerAck == r.sent })
	if err != nil {
		r.mu.Lock()
		t.Fatalf("server acknowledged %d of our %d bytes (§9.3)", r.peerAck, r.sent)
	}
}

// TestSpecV2ResumeReplay loses the WebSocket with bytes in flight both
// ways and resumes it (§9.4): the server replays what we did not count,
// we replay what it did not receive, and the stream carries every byte
// once, in order.
func TestSpecV2ResumeReplay(t *testing.T) {
	ctx := testCtx(t)
	echo := testutil.EchoServer(t)
	_, url := testutil.SandmuxServer(t, func(c *server.Config) { c.Target = echo.Addr })
	r, s := startV2(t, ctx, url, bearer("ignored"))
	st := openOK(t, ctx, s, "", echo.Addr)
	echoRoundTrip(t, ctx, st, []byte("before"))
	w0, err := r.welcomeOf(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The echo of x is lost on its way: what arrives is dropped, not
	// counted, and not acknowledged, as bytes that came in the same read
	// as a transport error (§9.3).
	x := randomBytes(t, 200<<10)
	r.mu.Lock()
	r.deaf = r.ws
	r.mu.Unlock()
	if err := st.write(ctx, x); err != nil {
		t.Fatal(err)
	}
	if err := r.waitFor(ctx, func() bool { return r.dropped >= len(x)/2 }); err != nil {
		t.Fatal("the server's echo never came")
	}
	r.cut()
	// y is written while detached: the client replays it from the
	// server's count.
	y := randomBytes(t, 100<<10)
	if err := st.write(ctx, y); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	rc := r.received
	r.mu.Unlock()

	w, err := r.resume(ctx)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if w.Status != welcomeResumed || w.ID != w0.ID || w.Secret != ([32]byte{}) || w.GraceMS != w0.GraceMS {
		t.Fatalf("resume WELCOME = %+v, want status 1, the id, a zero secret and the grace (§9.4, §9.7)", w)
	}
	// r.sent under its lock: the session's read loop writes window
	// updates meanwhile, each counted in it.
	r.mu.Lock()
	sent := r.sent
	r.mu.Unlock()
	if w.Received > sent {
		t.Fatalf("server received %d, more than our %d", w.Received, sent)
	}

	want := append(append([]byte{}, x...), y...)
	got := make([]byte, len(want))
	if err := st.readFull(ctx, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("after the resume the stream's bytes differ")
	}
	r.mu.Lock()
	if r.received <= rc {
		t.Errorf("nothing was replayed: received %d before and after", rc)
	}
	r.mu.Unlock()
	if err := st.closeWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := st.readAll(ctx); err != nil || len(rest) > 0 {
		t.Fatalf("end: %d bytes, %v", len(rest), err)
	}
}

// TestSpecV2ResumeRefusals checks the WELCOME statuses and the closes of
// §9.4 for resumes the server must not grant.
func TestSpecV2ResumeRefusals(t *testing.T) {
	ctx := testCtx(t)
	echo := testutil.EchoServer(t)
	_, url := testutil.SandmuxServer(t, func(c *server.Config) {
		c.Target = echo.Addr
		c.Token = "tok"
	})
	r, s := startV2(t, ctx, url, bearer("tok"))
	st := openOK(t, ctx, s, "", echo.Addr)
	echoRoundTrip(t, ctx, st, []byte("x"))
	w0, err := r.welcomeOf(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	rc := r.received
	r.mu.Unlock()

	refused := func(name string, hdr http.Header, id [16]byte, secret [32]byte, rc uint64, want byte) {
		t.Helper()
		c, w, err := resumeHello(ctx, url, hdr, hello(id, secret, rc))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer c.CloseNow()
		if w != (welcome{Status: want}) {
			t.Errorf("%s: WELCOME = %+v, want status %d and all else zero (§9.4)", name, w, want)
		}
		_, _, err = c.Read(ctx)
		if code := websocket.CloseStatus(err); code != websocket.StatusNormalClosure {
			t.Errorf("%s: after the WELCOME: %v, want a close with 1000 (§9.4)", name, err)
		}
	}
	wrong := w0.Secret
	wrong[0] ^= 1
	refused("wrong secret", bearer("tok"), w0.ID, wrong, rc, welcomeDenied)
	refused("unknown id", bearer("tok"), [16]byte{1}, w0.Secret, rc, welcomeUnknown)

	// A HELLO for a new session on a resume upgrade: closed with 1008.
	c, _, err := func() (*websocket.Conn, *http.Response, error) {
		h := bearer("tok")
		h.Set("Sandmux-Resume", "1")
		return dial(ctx, url, h, "sandmux.v2")
	}()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, websocket.MessageBinary, hello([16]byte{}, [32]byte{}, 0)); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read(ctx)
	if code := websocket.CloseStatus(err); code != websocket.StatusPolicyViolation {
		t.Errorf("new-session HELLO on a resume upgrade: %v, want a close with 1008 (§1.1)", err)
	}
	c.CloseNow()

	// A count beyond what the server sent: no WELCOME, the session ends,
	// and the next attempt meets status 2.
	r.cut()
	c, _, err = resumeHello(ctx, url, bearer("tok"), hello(w0.ID, w0.Secret, rc+1000))
	if err == nil {
		c.CloseNow()
		t.Fatal("a resume claiming more than was sent got a WELCOME")
	}
	refused("after a bad count", bearer("tok"), w0.ID, w0.Secret, rc, welcomeUnknown)
}

// TestSpecV2CredentialsAndEnd: a resume with other credentials is denied
// (§9.2, status 3), and END ends the session for good (§9.6).
func TestSpecV2CredentialsAndEnd(t *testing.T) {
	ctx := testCtx(t)
	echo := testutil.EchoServer(t)
	srv, url := testutil.SandmuxServer(t, func(c *server.Config) { c.Target = echo.Addr })
	r, s := startV2(t, ctx, url, bearer("one"))
	st := openOK(t, ctx, s, "", echo.Addr)
	echoRoundTrip(t, ctx, st, []byte("x"))
	w0, _ := r.welcomeOf(ctx)
	r.mu.Lock()
	rc := r.received
	r.mu.Unlock()

	r.cut()
	c, w, err := resumeHello(ctx, url, bearer("two"), hello(w0.ID, w0.Secret, rc))
	if err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
	if w.Status != welcomeDenied {
		t.Errorf("resume with another token: status %d, want 3 (§9.4)", w.Status)
	}
	// The same token, spelt otherwise, resumes (§9.2).
	r.hdr = http.Header{"Authorization": {"BEARER  one"}}
	if w, err := r.resume(ctx); err != nil || w.Status != welcomeResumed {
		t.Fatalf("resume with the token spelt otherwise: %+v, %v", w, err)
	}
	echoRoundTrip(t, ctx, st, []byte("resumed"))

	if err := r.Close(); err != nil { // sends END
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the session to end after END", func() bool {
		return srv.Stats().ActiveSessions == 0
	})
	c, w, err = resumeHello(ctx, url, bearer("one"), hello(w0.ID, w0.Secret, rc))
	if err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
	if w.Status != welcomeUnknown {
		t.Errorf("resume after END: status %d, want 2 (§9.6)", w.Status)
	}
}

// TestSpecV2ResumeOverLiveWebSocket resumes while the first WebSocket is
// still open, as a client that noticed a dead path before the server
// does: the server drops the old one first (§9.4).
func TestSpecV2ResumeOverLiveWebSocket(t *testing.T) {
	ctx := testCtx(t)
	echo := testutil.EchoServer(t)
	_, url := testutil.SandmuxServer(t, func(c *server.Config) { c.Target = echo.Addr })
	r, s := startV2(t, ctx, url, nil)
	st := openOK(t, ctx, s, "", echo.Addr)
	echoRoundTrip(t, ctx, st, []byte("first path"))
	r.mu.Lock()
	old := r.ws
	r.deaf = old // our count must be final before the HELLO
	r.mu.Unlock()
	if w, err := r.resume(ctx); err != nil || w.Status != welcomeResumed {
		t.Fatalf("resume: %+v, %v", w, err)
	}
	err := r.waitFor(ctx, func() bool { return slices.Contains(r.gone, old) })
	if err != nil {
		t.Error("the server kept the old WebSocket after the resume (§9.4)")
	}
	echoRoundTrip(t, ctx, st, randomBytes(t, 100<<10))
}

// TestSpecV2GraceRunsOut: a session not resumed within the grace ends,
// its target connections are reset, not finished (§6, §9.5), and a late
// resume meets status 2.
func TestSpecV2GraceRunsOut(t *testing.T) {
	ctx := testCtx(t)
	drain, drained := testutil.DrainServer(t)
	_, url := testutil.SandmuxServer(t, func(c *server.Config) {
		c.Target = drain.Addr
		c.ResumeGrace = 300 * time.Millisecond
	})
	r, s := startV2(t, ctx, url, nil)
	w, err := r.welcomeOf(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if w.GraceMS != 300 {
		t.Errorf("grace %d ms, want 300", w.GraceMS)
	}
	st := openOK(t, ctx, s, "", drain.Addr)
	if err := st.write(ctx, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	r.cut()
	if d := testutil.AwaitDrained(t, drained); d.Err == nil {
		t.Errorf("the target read %d bytes and a clean end after the grace, want a reset (§6)", d.N)
	}
	r.mu.Lock()
	rc := r.received
	r.mu.Unlock()
	c, w2, err := resumeHello(ctx, url, nil, hello(w.ID, w.Secret, rc))
	if err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
	if w2.Status != welcomeUnknown {
		t.Errorf("resume after the grace: status %d, want 2 (§9.4)", w2.Status)
	}
}
