package conformance

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sandmux/sandmux/client"
)

// The tests below hold sandmux's own client (the system under test, not
// a helper) to the spec, against specServer.

func specClient(url string) client.Config {
	cfg := client.DefaultConfig()
	cfg.URL = url
	cfg.Token = "tok"
	return cfg
}

func echoConn(t *testing.T, c net.Conn, data []byte) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { _, err := c.Write(data); errc <- err }()
	got := make([]byte, len(data))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("echo: the bytes differ")
	}
}

// TestClientV1 checks the client's upgrade (§1.1), its stream opening
// (§5.6) and its half-close (§6) against a server that picks sandmux.v1.
func TestClientV1(t *testing.T) {
	ctx := testCtx(t)
	ss := startSpecServer(t, "sandmux.v1")
	conn, done, err := client.DialStream(ctx, specClient(ss.url), "10.1.2.3:5432")
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	echoConn(t, conn, randomBytes(t, 1<<20))
	if cw, ok := conn.(interface{ CloseWrite() error }); !ok {
		t.Fatal("the client's stream cannot half-close")
	} else if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(conn); err != nil || len(rest) > 0 {
		t.Fatalf("after the half-close: %d bytes, %v; want a clean end", len(rest), err)
	}

	ss.mu.Lock()
	defer ss.mu.Unlock()
	h := ss.upgrades[0]
	if got := strings.ReplaceAll(h.Get("Sec-WebSocket-Protocol"), " ", ""); got != "sandmux.v2,sandmux.v1" {
		t.Errorf("offered %q, want newest first and v1 last (§1.1, §8)", got)
	}
	if got := h.Get("Authorization"); got != "Bearer tok" {
		t.Errorf("Authorization %q (§1.1)", got)
	}
	if got := h.Get("Sec-WebSocket-Extensions"); got != "" {
		t.Errorf("offered extensions %q, want none (§2)", got)
	}
	if h.Get("Sandmux-Resume") != "" {
		t.Error("a first upgrade carries Sandmux-Resume (§1.1)")
	}
	if want := request("10.1.2.3:5432"); len(ss.requests) != 1 || !bytes.Equal(ss.requests[0], want) {
		t.Errorf("request % x, want % x (§5.6)", ss.requests, want)
	}
	fr := ss.sess.framesOf(1)
	if len(fr) < 2 || fr[0].frameHeader != (frameHeader{Type: typeWindow, Flags: flagSYN, Stream: 1, Length: 0x003C0000}) {
		t.Errorf("client's first frame on stream 1: %+v, want window update, SYN, +4 MiB-256 KiB, a first stream's spare start (§4, §5.6)", fr[:min(len(fr), 1)])
	}
	var fin bool
	for _, f := range fr {
		if f.Flags&flagFIN != 0 {
			fin = f.frameHeader == frameHeader{Type: typeWindow, Flags: flagFIN, Stream: 1}
		}
	}
	if !fin {
		t.Error("the client's FIN is not a window update with FIN and length 0 (§5.6, §6)")
	}
}

// TestClientV2Resume checks a v2 session end to end from the server's
// side: the HELLO (§9.2), DATA sent behind it, the resume's upgrade and
// HELLO, the replays both ways (§9.4), the ping after a resume and END
// (§9.6).
func TestClientV2Resume(t *testing.T) {
	ctx := testCtx(t)
	ss := startSpecServer(t, "sandmux.v2")
	cfg := specClient(ss.url)
	cfg.Mux.KeepAliveInterval = 4 * time.Second
	sess, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = sess.Close()
		}
	}()
	conn, err := sess.OpenStreamEarly(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	echoConn(t, conn, []byte("SSH-2.0-first\r\n"))

	ss.mu.Lock()
	if h := ss.hellos[0]; !bytes.Equal(h, hello([16]byte{}, [32]byte{}, 0)) {
		t.Errorf("first HELLO % x, want 02 and 56 zero bytes (§9.7)", h)
	}
	if !ss.early {
		t.Error("no DATA behind the HELLO before the WELCOME (§9.2: sandmux's client sends it)")
	}
	if want := request(""); !bytes.Equal(ss.requests[0], want) {
		t.Errorf("request % x, want % x", ss.requests[0], want)
	}
	r, s := ss.r, ss.sess
	ss.mu.Unlock()

	// The client keeps writing while its WebSocket is cut: those bytes
	// are replayed after the resume, as are the server's.
	data := randomBytes(t, 512<<10)
	s.mu.Lock()
	pingsBefore := pingsLocked(s)
	s.mu.Unlock()
	ss.cut()
	echoConn(t, conn, data)

	ss.mu.Lock()
	if len(ss.upgrades) < 2 {
		ss.mu.Unlock()
		t.Fatal("the echo came back without a resume")
	}
	h := ss.upgrades[len(ss.upgrades)-1]
	hel := ss.hellos[len(ss.hellos)-1]
	ss.mu.Unlock()
	if h.Get("Sandmux-Resume") != "1" || h.Get("Sec-WebSocket-Protocol") != "sandmux.v2" || h.Get("Authorization") != "Bearer tok" {
		t.Errorf("resume upgrade: Sandmux-Resume %q, protocols %q, Authorization %q; want 1, sandmux.v2 alone, the same token (§9.4)",
			h.Get("Sandmux-Resume"), h.Get("Sec-WebSocket-Protocol"), h.Get("Authorization"))
	}
	if !bytes.Equal(hel[1:17], r.w.ID[:]) || !bytes.Equal(hel[17:49], r.w.Secret[:]) {
		t.Error("the resume's HELLO does not carry the session's id and secret (§9.4)")
	}
	// §9.4: a ping after the resume, within the monitor's next check (a
	// quarter of the keepalive interval: 1 s here), well before the next
	// keepalive ping (4 s after the first).
	pctx, cancel := context.WithTimeout(ctx, 2500*time.Millisecond)
	defer cancel()
	err = s.waitFor(pctx, func() bool { return pingsLocked(s) > pingsBefore })
	if err != nil {
		t.Error("no ping within 2.5 s of the resume (§9.4)")
	}

	closed = true
	if err := sess.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	if err := r.waitFor(ctx, func() bool { return r.ended != nil }); err != nil || r.ended != errEnded {
		t.Errorf("after the client's Close: %v, want END (§9.6)", r.ended)
	}
}

// TestClientRawFallback: a server that picks no subprotocol puts the
// client in raw mode: one connection to the server's own target, and a
// named target refused (§1.3).
func TestClientRawFallback(t *testing.T) {
	ctx := testCtx(t)
	ss := startSpecServer(t, "")
	conn, done, err := client.DialStream(ctx, specClient(ss.url), "")
	if err != nil {
		t.Fatal(err)
	}
	echoConn(t, conn, randomBytes(t, 200<<10))
	done()

	sess, err := client.Dial(ctx, specClient(ss.url))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if !sess.Raw() {
		t.Fatal("the client is not in raw mode")
	}
	if c, err := sess.OpenStream(ctx, "10.0.0.1:22"); err == nil {
		_ = c.Close()
		t.Error("a raw session opened a stream to a named target (§1.3)")
	}
	c1, err := sess.OpenStream(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	if c2, err := sess.OpenStream(ctx, ""); err == nil {
		_ = c2.Close()
		t.Error("a raw session opened a second stream (§1.3)")
	}

}

// pingsLocked counts the pings the peer sent; the caller holds s.mu.
func pingsLocked(s *miniSession) int {
	n := 0
	for _, f := range s.frames {
		if f.Stream == 0 && f.Type == typePing && f.Flags == flagSYN {
			n++
		}
	}
	return n
}
