package conformance

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/server"
)

// upgradeAnswer sends a hand-made upgrade and returns the answer's status,
// headers and body (read when it is not a 101).
func upgradeAnswer(t *testing.T, url string, hdr http.Header) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http"+strings.TrimPrefix(url, "ws"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp.StatusCode, resp.Header, ""
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// TestSpecHTTPAnswers checks §1.2's table, in its order.
func TestSpecHTTPAnswers(t *testing.T) {
	_, url := testutil.SandmuxServer(t, func(c *server.Config) { c.Token = "tok" })
	httpURL := "http" + strings.TrimPrefix(url, "ws")
	tok := []string{"Bearer tok"}

	resp, err := http.Post(httpURL+"/healthz", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || string(body) != "sandmux: a request to sandmux has no body (GET /healthz, or a WebSocket upgrade)\n" {
		t.Errorf("a request with a body: %d %q", resp.StatusCode, body)
	}

	resp, err = http.Get(httpURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("/healthz: %d %q", resp.StatusCode, body)
	}

	resp, err = http.Get(httpURL + "/other")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 426 || resp.Header.Get("Upgrade") != "websocket" ||
		!strings.Contains(string(body), "sandmux proxy") || !strings.Contains(string(body), "/healthz") {
		t.Errorf("not an upgrade: %d %v %q", resp.StatusCode, resp.Header, body)
	}

	code, h, b := upgradeAnswer(t, url, http.Header{"Sec-Websocket-Protocol": {"sandmux.v1"}})
	if code != 401 || h.Get("WWW-Authenticate") != `Bearer realm="sandmux"` ||
		b != "sandmux: missing or wrong token (send Authorization: Bearer <token>)\n" {
		t.Errorf("no token: %d %v %q", code, h, b)
	}
	code, _, b = upgradeAnswer(t, url, http.Header{"Authorization": {"Bearer tok2"}})
	if code != 401 {
		t.Errorf("wrong token: %d %q", code, b)
	}

	code, _, b = upgradeAnswer(t, url, http.Header{"Authorization": tok, "Sec-Websocket-Protocol": {"sandmux.v9, foo"}})
	if code != 400 || b != "sandmux: unsupported protocol sandmux.v9, foo; this server speaks sandmux.v2, sandmux.v1 (upgrade the older side)\n" {
		t.Errorf("unknown version: %d %q", code, b)
	}

	// The server picks v2 from anything that offers it, whatever the
	// order, and never a foreign one (§1.2).
	for _, offer := range []string{"sandmux.v1, sandmux.v2", "foo, sandmux.v9, sandmux.v2", "sandmux.v1, foo", "foo"} {
		code, h, b = upgradeAnswer(t, url, http.Header{"Authorization": {"bearer    tok"}, "Sec-Websocket-Protocol": {offer}})
		want := "sandmux.v2"
		if !strings.Contains(offer, want) {
			want = "sandmux.v1"
		}
		if offer == "foo" {
			want = "" // raw mode (§1.2)
		}
		if code != 101 || h.Get("Sec-WebSocket-Protocol") != want {
			t.Errorf("offer %q: %d, picked %q, want %q (%q)", offer, code, h.Get("Sec-WebSocket-Protocol"), want, b)
		}
	}
}

// TestSpecHTTPResumeOffAndLimit: a resume to a server with resumption off
// is refused with 400, and a new WebSocket beyond --max-sessions with
// 503 (§1.2); a server without resumption picks v1.
func TestSpecHTTPResumeOffAndLimit(t *testing.T) {
	ctx := testCtx(t)
	_, url := testutil.SandmuxServer(t, func(c *server.Config) {
		c.ResumeGrace = 0
		c.MaxSessions = 1
	})
	code, _, b := upgradeAnswer(t, url, http.Header{"Sandmux-Resume": {"1"}, "Sec-Websocket-Protocol": {"sandmux.v2"}})
	if code != 400 || b != "sandmux: this server does not resume sessions (started with --resume-grace 0)\n" {
		t.Errorf("resume with resumption off: %d %q", code, b)
	}
	c, resp, err := dial(ctx, url, nil, "sandmux.v2", "sandmux.v1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "sandmux.v1" {
		t.Errorf("resumption off: picked %q, want sandmux.v1", got)
	}
	code, _, b = upgradeAnswer(t, url, http.Header{"Sec-Websocket-Protocol": {"sandmux.v1"}})
	if code != 503 || b != "sandmux: server at its session limit (1); close some sessions or raise --max-sessions\n" {
		t.Errorf("beyond the session limit: %d %q", code, b)
	}
}

// TestSpecRaw is §7: a client offering no subprotocol is spliced to the
// default target; a target that cannot be reached is a 502; a target
// that resets closes with 1011.
func TestSpecRaw(t *testing.T) {
	ctx := testCtx(t)
	echo := testutil.EchoServer(t)
	_, url := testutil.SandmuxServer(t, func(c *server.Config) { c.Target = echo.Addr })
	c, resp, err := dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "" {
		t.Fatalf("raw upgrade picked %q", p)
	}
	data := randomBytes(t, 300<<10)
	errc := make(chan error, 1)
	go func() {
		// Message boundaries carry no meaning: odd sizes, one empty.
		for _, part := range [][]byte{data[:1], {}, data[1:70001], data[70001:]} {
			if err := c.Write(ctx, websocket.MessageBinary, part); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	var got []byte
	for len(got) < len(data) {
		_, m, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("raw read after %d bytes: %v", len(got), err)
		}
		got = append(got, m...)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("raw: the bytes differ")
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("raw close: %v", err)
	}

	// The client's close ends the target's connection with a FIN.
	drain, drained := testutil.DrainServer(t)
	_, drainURL := testutil.SandmuxServer(t, func(c *server.Config) { c.Target = drain.Addr })
	cd, _, err := dial(ctx, drainURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cd.CloseNow()
	if err := cd.Write(ctx, websocket.MessageBinary, data[:1000]); err != nil {
		t.Fatal(err)
	}
	if err := cd.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("raw close: %v", err)
	}
	if d := testutil.AwaitDrained(t, drained); d.N != 1000 || d.Err != nil {
		t.Errorf("raw, client's close: the target read %d bytes and ended with %v, want 1000 and a FIN (§7)", d.N, d.Err)
	}

	// A text message is refused with 1003 (§2, §7): websocat needs -b.
	ct, _, err := dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ct.CloseNow()
	if err := ct.Write(ctx, websocket.MessageText, []byte("text")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ct.Read(ctx); websocket.CloseStatus(err) != websocket.StatusUnsupportedData {
		t.Errorf("raw, a text message: %v, want close 1003 (§7)", err)
	}

	// A target that ends its side: its bytes, then a close with 1000.
	bye := testutil.Serve(t, func(c net.Conn) { _, _ = c.Write([]byte("bye")) })
	_, byeURL := testutil.SandmuxServer(t, func(c *server.Config) { c.Target = bye.Addr })
	cb, _, err := dial(ctx, byeURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.CloseNow()
	var fromBye []byte
	for {
		_, m, err := cb.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure || string(fromBye) != "bye" {
				t.Errorf("raw, target's EOF: %q then %v, want \"bye\" then close 1000 (§7)", fromBye, err)
			}
			break
		}
		fromBye = append(fromBye, m...)
	}

	// A target that is down: 502 with the reply's words.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	_ = ln.Close()
	_, downURL := testutil.SandmuxServer(t, func(c *server.Config) { c.Target = down })
	code, _, b := upgradeAnswer(t, downURL, nil)
	if want := "sandmux: " + down + " refused the connection inside the sandbox (is the service listening?)\n"; code != 502 || b != want {
		t.Errorf("raw to a target that is down: %d %q, want 502 %q", code, b, want)
	}

	// A target that resets: 1011 after the bytes that came.
	reset := testutil.ResettingServer(t, 5)
	_, resetURL := testutil.SandmuxServer(t, func(c *server.Config) { c.Target = reset.Addr })
	c2, _, err := dial(ctx, resetURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseNow()
	var n int
	for n < 5 {
		_, m, err := c2.Read(ctx)
		if err != nil {
			t.Fatalf("raw from a resetting target after %d bytes: %v", n, err)
		}
		n += len(m)
	}
	if err := c2.Write(ctx, websocket.MessageBinary, []byte{1}); err != nil {
		t.Fatal(err)
	}
	_, _, err = c2.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusInternalError || ce.Reason != "the connection inside the sandbox failed" {
		t.Errorf("raw, target reset: %v, want close 1011 (§7)", err)
	}
}
