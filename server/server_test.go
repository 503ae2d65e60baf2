package server_test

import (
	"context"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"
	"go.uber.org/goleak"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
	"github.com/sandmux/sandmux/server"
)

// waitTimeout bounds every wait in these tests; nothing should come near it.
const waitTimeout = 2 * time.Minute

// fastMux is the default tuning with timeouts short enough for tests and
// long enough that a loaded race-detector run never trips them by accident.
func fastMux() mux.Config {
	c := mux.DefaultConfig()
	c.KeepAliveInterval = time.Second
	c.DeadAfter = 10 * time.Second
	c.WriteTimeout = 30 * time.Second
	c.StreamOpenTimeout = 30 * time.Second
	c.StreamCloseTimeout = 5 * time.Second
	c.HeaderTimeout = 30 * time.Second // 100 opens racing bulk data on a loaded machine
	return c
}

// echoTarget is a loopback TCP service that echoes each connection and
// records the checksum of everything it received on it.
type echoTarget struct {
	addr string
	srv  *testutil.Server
	mu   sync.Mutex
	sums map[[32]byte]int
}

func newEchoTarget(t *testing.T) *echoTarget {
	t.Helper()
	e := &echoTarget{sums: map[[32]byte]int{}}
	e.srv = testutil.Serve(t, func(c net.Conn) {
		h := sha256.New()
		if _, err := io.Copy(c, io.TeeReader(c, h)); err != nil {
			return
		}
		_ = c.(*net.TCPConn).CloseWrite()
		var sum [32]byte
		h.Sum(sum[:0])
		e.mu.Lock()
		e.sums[sum]++
		e.mu.Unlock()
	})
	e.addr = e.srv.Addr
	return e
}

// close stops the listener and waits for every connection to end.
func (e *echoTarget) close() { e.srv.Close() }

func (e *echoTarget) received(sum [32]byte) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sums[sum]
}

type testServer struct {
	srv *server.Server
	ts  *httptest.Server
	url string // ws://127.0.0.1:PORT
}

// startServer runs a sandmux server forwarding to target on a loopback
// httptest server. Both are closed when the test ends.
func startServer(t *testing.T, target string, mod func(*server.Config)) *testServer {
	t.Helper()
	return startServerOn(t, nil, target, mod)
}

// startServerOn is startServer on ln (IPv6 loopback, say), or on
// httptest's own listener if ln is nil.
func startServerOn(t *testing.T, ln net.Listener, target string, mod func(*server.Config)) *testServer {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Target = target
	cfg.DialTimeout = 30 * time.Second // a starved test process is slow even on loopback
	cfg.Mux = fastMux()
	if mod != nil {
		mod(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	if ln != nil {
		_ = ts.Listener.Close()
		ts.Listener = ln
	}
	// As cmd/sandmux serves: the resumable transport then writes the
	// frames it builds itself (mux.Link.Frames).
	ts.Listener = mux.Listener{Listener: ts.Listener}
	ts.Config.ConnContext = srv.ConnContext
	ts.Config.ConnState = srv.ConnState
	ts.Start()
	// Server.Close ends the hijacked WebSocket connections, which
	// httptest.Server.Close does not wait for.
	t.Cleanup(func() { _ = srv.Close(); ts.Close() })
	return &testServer{srv: srv, ts: ts, url: "ws" + strings.TrimPrefix(ts.URL, "http")}
}

func clientConfig(url string) client.Config {
	c := client.DefaultConfig()
	c.URL = url
	c.DialTimeout = 10 * time.Second
	c.Mux = fastMux()
	return c
}

func dial(t *testing.T, cfg client.Config) *client.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial(%s): %v", cfg.URL, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

type closeWriter interface{ CloseWrite() error }

// randBytes returns n pseudo-random bytes, cheaply: the big tests need
// hundreds of MiB and no cryptographic quality.
func randBytes(n int) []byte {
	var seed [32]byte
	_, _ = cryptorand.Read(seed[:])
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

// echoCheck sends size random bytes over c, half-closes, reads the echo
// back and checks it. It returns the checksum of what was sent.
func echoCheck(c net.Conn, size int) ([32]byte, error) {
	data := randBytes(size)
	sum := sha256.Sum256(data)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(closeWriter).CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		return sum, fmt.Errorf("read echo after %d bytes: %w", n, err)
	}
	if err := <-werr; err != nil {
		return sum, fmt.Errorf("write: %w", err)
	}
	var got [32]byte
	h.Sum(got[:0])
	if got != sum {
		return sum, fmt.Errorf("echoed %d bytes whose checksum differs from the %d sent", n, size)
	}
	return sum, nil
}

// TestManyStreams: 100 concurrent streams on one session, each carrying
// 1 MiB (twice a stream's start window) to a TCP echo target and back,
// checked at the target and at the client; then everything shuts down
// without leaking a goroutine.
func TestManyStreams(t *testing.T) {
	// 4 MiB each took 31 s of a 2-minute limit on one CPU under -race,
	// the server package's largest share, and proved nothing 1 MiB does
	// not: every stream still waits on its window both ways.
	const streams, size = 100, 1 << 20
	echo := newEchoTarget(t)
	s := startServer(t, echo.addr, nil)
	sess := dial(t, clientConfig(s.url))

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	start := time.Now()
	sums := make([][32]byte, streams)
	errs := make([]error, streams)
	var wg sync.WaitGroup
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := sess.OpenStream(ctx, "")
			if err != nil {
				errs[i] = fmt.Errorf("open: %w", err)
				return
			}
			defer c.Close()
			sums[i], errs[i] = echoCheck(c, size)
		}()
	}
	wg.Wait()
	t.Logf("%d streams × %d MiB echoed in %v", streams, size>>20, time.Since(start).Round(time.Millisecond))
	for i, err := range errs {
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	// The target received each stream's bytes intact. Its handler records
	// the checksum after half-closing, so wait for the last ones.
	testutil.WaitFor(t, waitTimeout, "the target to record every stream", func() bool {
		for _, sum := range sums {
			if echo.received(sum) != 1 {
				return false
			}
		}
		return true
	})
	st := s.srv.Stats()
	if st.Sessions != 1 || st.RawSessions != 0 || st.ActiveSessions != 1 || st.Streams != streams {
		t.Fatalf("Stats() = %+v, want 1 session, 0 raw, 1 active, %d streams", st, streams)
	}
	testutil.WaitFor(t, waitTimeout, "streams to close on the server", func() bool { return s.srv.Stats().ActiveStreams == 0 })

	if err := sess.Close(); err != nil {
		t.Fatalf("client Close: %v", err)
	}
	testutil.WaitFor(t, waitTimeout, "the server to drop the session", func() bool { return s.srv.Stats().ActiveSessions == 0 })
	if err := s.srv.Close(); err != nil {
		t.Fatalf("server Close: %v", err)
	}
	s.ts.Close()
	echo.close()
	goleak.VerifyNone(t)
}

// rawRequest sends one HTTP request, optionally as a WebSocket upgrade.
func rawRequest(t *testing.T, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

// upgrade returns the headers of a WebSocket upgrade request.
func upgrade(extra ...string) http.Header {
	h := http.Header{
		"Connection":            {"Upgrade"},
		"Upgrade":               {"websocket"},
		"Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		h.Add(extra[i], extra[i+1])
	}
	return h
}

// TestHTTPAnswers: what the server says to requests that are not a
// session, word for word.
func TestHTTPAnswers(t *testing.T) {
	echo := newEchoTarget(t)
	s := startServer(t, echo.addr, func(c *server.Config) { c.Token = "s3cret" })
	const (
		notWS   = "this is a sandmux endpoint: connect with `sandmux proxy` or a WebSocket client (GET /healthz for a health check)\n"
		noToken = "sandmux: missing or wrong token (send Authorization: Bearer <token>)\n"
	)
	speaks := strings.Join(mux.SupportedSubprotocols, ", ")
	tests := []struct {
		name     string
		path     string
		header   http.Header
		status   int
		body     string
		wantHdrs map[string]string
	}{
		{"health", "/healthz", nil, http.StatusOK, "ok\n", map[string]string{"Content-Type": "text/plain; charset=utf-8"}},
		{"health needs no token", "/healthz", http.Header{"Authorization": {"Bearer wrong"}}, http.StatusOK, "ok\n", nil},
		{"plain GET /", "/", nil, http.StatusUpgradeRequired, notWS, map[string]string{"Upgrade": "websocket"}},
		{"plain GET elsewhere", "/ws", nil, http.StatusUpgradeRequired, notWS, nil},
		{"upgrade without token", "/", upgrade("Sec-Websocket-Protocol", mux.Subprotocol), http.StatusUnauthorized, noToken,
			map[string]string{"Www-Authenticate": `Bearer realm="sandmux"`}},
		{"upgrade with wrong token", "/", upgrade("Authorization", "Bearer nope"), http.StatusUnauthorized, noToken, nil},
		{"upgrade with token as basic auth", "/", upgrade("Authorization", "Basic czNjcmV0"), http.StatusUnauthorized, noToken, nil},
		{"upgrade with token prefix only", "/", upgrade("Authorization", "Bearer s3cre"), http.StatusUnauthorized, noToken, nil},
		{"raw upgrade also needs the token", "/", upgrade(), http.StatusUnauthorized, noToken, nil},
		{"unknown version", "/", upgrade("Authorization", "Bearer s3cret", "Sec-Websocket-Protocol", "sandmux.v9"), http.StatusBadRequest,
			"sandmux: unsupported protocol sandmux.v9; this server speaks " + speaks + " (upgrade the older side)\n", nil},
		{"unknown versions", "/", upgrade("Authorization", "Bearer s3cret", "Sec-Websocket-Protocol", "sandmux.v9, sandmux.v0"), http.StatusBadRequest,
			"sandmux: unsupported protocol sandmux.v9, sandmux.v0; this server speaks " + speaks + " (upgrade the older side)\n", nil},
		{"unknown version beside a foreign one", "/", upgrade("Authorization", "Bearer s3cret", "Sec-Websocket-Protocol", "chat", "Sec-Websocket-Protocol", "sandmux.v8"),
			http.StatusBadRequest, "sandmux: unsupported protocol chat, sandmux.v8; this server speaks " + speaks + " (upgrade the older side)\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := rawRequest(t, s.ts.URL+tt.path, tt.header)
			if resp.StatusCode != tt.status || body != tt.body {
				t.Fatalf("%s %s = %d %q\nwant %d %q", http.MethodGet, tt.path, resp.StatusCode, body, tt.status, tt.body)
			}
			for k, v := range tt.wantHdrs {
				if got := resp.Header.Get(k); got != v {
					t.Fatalf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
	if st := s.srv.Stats(); st.Sessions != 0 {
		t.Fatalf("Stats() = %+v after only refused requests", st)
	}
}

// TestAuth: the token is checked before the upgrade, and the client
// reports a refusal in one line.
func TestAuth(t *testing.T) {
	echo := newEchoTarget(t)
	s := startServer(t, echo.addr, func(c *server.Config) { c.Token = "s3cret" })
	tests := []struct {
		name   string
		token  string
		header http.Header
		ok     bool
	}{
		{"no token", "", nil, false},
		{"wrong token", "guess", nil, false},
		{"token", "s3cret", nil, true},
		{"token as an Authorization header", "", http.Header{"Authorization": {"Bearer s3cret"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := clientConfig(s.url)
			cfg.Token, cfg.Header = tt.token, tt.header
			if tt.ok {
				sess := dial(t, cfg)
				c, err := sess.OpenStream(context.Background(), "")
				if err != nil {
					t.Fatalf("OpenStream: %v", err)
				}
				defer c.Close()
				if _, err := echoCheck(c, 1000); err != nil {
					t.Fatal(err)
				}
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			sess, err := client.Dial(ctx, cfg)
			if err == nil {
				_ = sess.Close()
				t.Fatal("Dial succeeded without the right token")
			}
			var de *client.DialError
			if !errors.As(err, &de) || de.StatusCode != http.StatusUnauthorized || de.Temporary() {
				t.Fatalf("Dial = %v (%T), want a permanent 401 DialError", err, err)
			}
			if want := s.url + ": 401 Unauthorized (check --token, --token-file or SANDMUX_TOKEN)"; err.Error() != want {
				t.Fatalf("error text\n  %s\nwant\n  %s", err, want)
			}
		})
	}
}

// TestVersionNegotiation: which subprotocol the server picks for what a
// client offers.
func TestVersionNegotiation(t *testing.T) {
	echo := newEchoTarget(t)
	s := startServer(t, echo.addr, nil)
	tests := []struct {
		name    string
		offer   []string
		picked  string // "" is raw mode
		refused bool
	}{
		{"sandmux", []string{mux.Subprotocol}, mux.Subprotocol, false},
		{"newer first", []string{"sandmux.v9", mux.Subprotocol}, mux.Subprotocol, false},
		{"nothing: raw", nil, "", false},
		{"foreign: raw", []string{"binary"}, "", false},
		{"only unknown sandmux", []string{"sandmux.v9"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			ws, resp, err := websocket.Dial(ctx, s.url, &websocket.DialOptions{
				Subprotocols:    tt.offer,
				CompressionMode: websocket.CompressionDisabled,
			})
			if tt.refused {
				if err == nil {
					_ = ws.CloseNow()
					t.Fatal("upgrade succeeded")
				}
				if resp == nil || resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("Dial = %v, want a 400 answer", err)
				}
				b, _ := io.ReadAll(resp.Body)
				if !strings.Contains(string(b), "this server speaks ") || !strings.Contains(string(b), mux.Subprotocol) {
					t.Fatalf("400 body %q does not name %s", b, mux.Subprotocol)
				}
				return
			}
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer ws.CloseNow()
			if got := ws.Subprotocol(); got != tt.picked {
				t.Fatalf("server picked %q, want %q", got, tt.picked)
			}
			if resp.Header.Get("Sec-Websocket-Extensions") != "" {
				t.Fatalf("server negotiated extensions %q; compression must be off", resp.Header.Get("Sec-Websocket-Extensions"))
			}
		})
	}
}

// TestStreamRefusals: each way the server refuses a target reaches the
// client as a *mux.StreamError with the line a user sees; the session
// survives every one of them.
func TestStreamRefusals(t *testing.T) {
	echo := newEchoTarget(t)
	closed := testutil.FreeAddr(t)
	_, echoPort, _ := net.SplitHostPort(echo.addr)
	s := startServer(t, echo.addr, func(c *server.Config) {
		c.Allow = []string{closed, "nosuch.invalid:22", "LocalHost:" + echoPort}
	})
	sess := dial(t, clientConfig(s.url))
	tests := []struct {
		target     string
		status     mux.Status
		text       string // exact, or the prefix when prefix is set
		prefix     bool
		unreachErr bool
	}{
		{target: "10.0.0.1:5432", status: mux.StatusNotAllowed, text: "server refused target 10.0.0.1:5432: not allowed (add --allow 10.0.0.1:5432 to `sandmux server` in the sandbox)"},
		{target: "nonsense", status: mux.StatusNotAllowed, text: "server refused target nonsense: not allowed (not HOST:PORT)"},
		{target: "127.0.0.1:0", status: mux.StatusNotAllowed, text: "server refused target 127.0.0.1:0: not allowed (not HOST:PORT)"},
		{target: closed, status: mux.StatusRefused, text: closed + " refused the connection inside the sandbox (is the service listening?)"},
		// .invalid never resolves (RFC 6761). How the resolver words that
		// varies, so only the sandmux part is exact.
		{target: "nosuch.invalid:22", status: mux.StatusUnreachable, text: "cannot reach nosuch.invalid:22 inside the sandbox: no such host nosuch.invalid"},
		{target: "NoSuch.Invalid:022", status: mux.StatusUnreachable, text: "cannot reach nosuch.invalid:22 inside the sandbox: no such host nosuch.invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			c, err := sess.OpenStream(ctx, tt.target)
			if err == nil {
				_ = c.Close()
				t.Fatal("OpenStream succeeded")
			}
			var se *mux.StreamError
			if !errors.As(err, &se) || se.Status != tt.status {
				t.Fatalf("OpenStream = %v (%T), want a StreamError with status %q", err, err, tt.status)
			}
			if got := err.Error(); (tt.prefix && !strings.HasPrefix(got, tt.text)) || (!tt.prefix && got != tt.text) {
				t.Fatalf("error text\n  %s\nwant\n  %s", got, tt.text)
			}
		})
	}
	// Allowed targets, in any spelling, still work on the same session.
	for _, target := range []string{"", echo.addr, "127.0.0.1:0" + echoPort, "localhost:" + echoPort} {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		c, err := sess.OpenStream(ctx, target)
		cancel()
		if err != nil {
			t.Fatalf("OpenStream(%q) after refusals: %v", target, err)
		}
		if _, err := echoCheck(c, 64<<10); err != nil {
			t.Fatalf("%q: %v", target, err)
		}
		_ = c.Close()
	}
	if st := s.srv.Stats(); st.Sessions != 1 {
		t.Fatalf("Stats() = %+v: refusals must not cost the session", st)
	}
}

// rawYamux dials the server with the sandmux subprotocol but speaks bare
// yamux, so a test can send any stream header, or none.
func rawYamux(t *testing.T, url string) *yamux.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{mux.Subprotocol}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	life, stop := context.WithCancel(context.Background())
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	ys, err := yamux.Client(mux.NetConn(life, ws), cfg)
	if err != nil {
		stop()
		t.Fatalf("yamux: %v", err)
	}
	t.Cleanup(func() { _ = ys.Close(); stop() })
	return ys
}

// TestBadStreamHeader: a stream whose header is unreadable is answered
// with StatusBadRequest saying why, within the header timeout.
func TestBadStreamHeader(t *testing.T) {
	echo := newEchoTarget(t)
	s := startServer(t, echo.addr, func(c *server.Config) { c.Mux.HeaderTimeout = 200 * time.Millisecond })
	ys := rawYamux(t, s.url)
	const hint = " (are client and server versions compatible?)"
	// A header that did not come in time is not one the server could not
	// parse: its line does not ask about versions.
	const late = "server could not open a stream: no stream header within the server's --header-timeout (200ms); run the command again"
	tests := []struct {
		name string
		send []byte
		want string
	}{
		{"future version", []byte{2, 0, 0, 0}, "server rejected the stream header: unsupported stream header version: 2 (this build speaks 1)" + hint},
		{"request flags", []byte{1, 7, 0, 0}, "server rejected the stream header: malformed stream header: request flags 0x7 are not defined" + hint},
		{"oversized", []byte{1, 0, 0xff, 0xff}, "server rejected the stream header: stream header too large: 65539 bytes, limit 4096" + hint},
		{"non-UTF-8 target", []byte{1, 0, 0, 5, 1, 0, 2, 0xff, 0xfe}, "server rejected the stream header: malformed stream header: field 1 is not UTF-8" + hint},
		{"no header at all", nil, late},
		{"half a header", []byte{1, 0}, late},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := ys.OpenStream()
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer st.Close()
			if _, err := st.Write(tt.send); err != nil {
				t.Fatalf("write: %v", err)
			}
			_ = st.SetReadDeadline(time.Now().Add(waitTimeout))
			rep, err := mux.ReadReply(st)
			if err != nil {
				t.Fatalf("ReadReply: %v", err)
			}
			if want := mux.StatusBadRequest; tt.want == late && rep.Status != mux.StatusInternal || tt.want != late && rep.Status != want {
				t.Fatalf("reply %+v, want StatusBadRequest, or StatusInternal for a late header", rep)
			}
			if got := rep.Err().Error(); got != tt.want {
				t.Fatalf("error text\n  %s\nwant\n  %s", got, tt.want)
			}
			// Nothing follows the refusal: the server closed the stream.
			if n, err := st.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Fatalf("after the refusal: Read = %d, %v; want EOF", n, err)
			}
		})
	}
}

// TestRawMode: a WebSocket client that offers no subprotocol (websocat)
// is spliced to the default target; when that target is down, the
// WebSocket is closed.
func TestRawMode(t *testing.T) {
	echo := newEchoTarget(t)
	s := startServer(t, echo.addr, nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	nc := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	msg := []byte("SSH-2.0-OpenSSH_9.6\r\n\x00\xff binary")
	if _, err := nc.Write(msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	back := make([]byte, len(msg))
	if _, err := io.ReadFull(nc, back); err != nil || string(back) != string(msg) {
		t.Fatalf("echo = %q, %v", back, err)
	}
	// A raw connection open now is counted as one (it is neither a
	// session nor a stream, and no metric showed it).
	if st := s.srv.Stats(); st.Sessions != 1 || st.RawSessions != 1 || st.ActiveSessions != 0 || st.ActiveRaw != 1 {
		t.Fatalf("Stats() = %+v, want 1 raw session, open, and no sandmux session", st)
	}
	if err := nc.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	testutil.WaitFor(t, waitTimeout, "the ended raw connection uncounted", func() bool { return s.srv.Stats().ActiveRaw == 0 })

	// A target that is down is the upgrade's answer, in the words a
	// sandmux stream gets, not a WebSocket that opens and closes cleanly.
	addr := testutil.FreeAddr(t)
	down := startServer(t, addr, nil)
	_, resp, err := websocket.Dial(ctx, down.url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("dial: %v, %v; want 502", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if want := "sandmux: " + addr + " refused the connection inside the sandbox (is the service listening?)\n"; string(body) != want {
		t.Fatalf("502 body %q, want %q", body, want)
	}
}

// TestRawTargetResetIsNoCleanEnd: a raw client whose target resets its
// connection gets a close frame saying so (1011), which its WebSocket
// library reports as an error, not the normal close it reads as the end.
func TestRawTargetResetIsNoCleanEnd(t *testing.T) {
	s := startServer(t, testutil.ResettingServer(t, 64<<10).Addr, nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.CloseNow()
	nc := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	if _, err := io.ReadFull(nc, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, nc)
	if websocket.CloseStatus(err) != websocket.StatusInternalError {
		t.Fatalf("read %d more bytes, then %v; want a close with status 1011", n, err)
	}
}

// TestCloseWithLiveSessions: Close ends live sessions of both kinds
// promptly, their streams see an error rather than a clean end, and later
// upgrades are refused.
func TestCloseWithLiveSessions(t *testing.T) {
	echo := newEchoTarget(t)
	s := startServer(t, echo.addr, nil)
	sess := dial(t, clientConfig(s.url))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := sess.OpenStream(ctx, "")
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.Dial(ctx, s.url, nil)
	if err != nil {
		t.Fatalf("raw dial: %v", err)
	}
	defer ws.CloseNow()
	raw := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	if _, err := raw.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(raw, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	streamErr := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 1)); streamErr <- err }()
	rawErr := make(chan error, 1)
	go func() { _, err := raw.Read(make([]byte, 1)); rawErr <- err }()

	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- s.srv.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Close did not return with live sessions")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v with live sessions", d)
	}
	t.Logf("Close returned in %v", time.Since(start).Round(time.Millisecond))
	select {
	case <-sess.Done():
	case <-ctx.Done():
		t.Fatal("client session did not end")
	}
	if err := <-streamErr; err == nil || err == io.EOF || !errors.Is(err, mux.ErrSessionEnded) {
		t.Fatalf("stream Read = %v, want an error wrapping ErrSessionEnded", err)
	}
	// A raw client is told, with a close frame its library does not read
	// as a clean end (1000 and 1001 read as EOF).
	var ce websocket.CloseError
	if err := <-rawErr; !errors.As(err, &ce) || ce.Code != websocket.StatusServiceRestart || ce.Reason != "server is shutting down" {
		t.Fatalf("raw Read after Close = %v, want close status 1012, server is shutting down", err)
	}
	if st := s.srv.Stats(); st.ActiveSessions != 0 || st.ActiveStreams != 0 {
		t.Fatalf("Stats() = %+v after Close", st)
	}
	resp, body := rawRequest(t, s.ts.URL, upgrade("Sec-Websocket-Protocol", mux.Subprotocol))
	if resp.StatusCode != http.StatusServiceUnavailable || body != "sandmux: server is shutting down\n" {
		t.Fatalf("upgrade after Close = %d %q", resp.StatusCode, body)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*server.Config)
		want error
	}{
		{"target without port", func(c *server.Config) { c.Target = "127.0.0.1" }, server.ErrInvalidConfig},
		{"target port zero", func(c *server.Config) { c.Target = "127.0.0.1:0" }, server.ErrInvalidConfig},
		{"bad allow entry", func(c *server.Config) { c.Allow = []string{"127.0.0.1:5432", "db"} }, server.ErrInvalidConfig},
		{"zero dial timeout", func(c *server.Config) { c.DialTimeout = 0 }, server.ErrInvalidConfig},
		{"zero total streams", func(c *server.Config) { c.MaxTotalStreams = 0 }, server.ErrInvalidConfig},
		{"bad mux config", func(c *server.Config) { c.Mux.StreamWindow = 1 }, mux.ErrInvalidConfig},
	}
	if err := server.DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := server.DefaultConfig()
			tt.mod(&cfg)
			if err := cfg.Validate(); !errors.Is(err, tt.want) {
				t.Fatalf("Validate() = %v, want %v", err, tt.want)
			}
			if srv, err := server.New(cfg); !errors.Is(err, tt.want) {
				if srv != nil {
					_ = srv.Close()
				}
				t.Fatalf("New() = %v, want %v", err, tt.want)
			}
		})
	}
}
