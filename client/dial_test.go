package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
	"github.com/sandmux/sandmux/server"
)

// waitTimeout bounds every wait in these tests; nothing should come near it.
const waitTimeout = time.Minute

func wsURL(httpURL string) string {
	if rest, ok := strings.CutPrefix(httpURL, "https"); ok {
		return "wss" + rest
	}
	return "ws" + strings.TrimPrefix(httpURL, "http")
}

func testConfig(url string) client.Config {
	c := client.DefaultConfig()
	c.URL = url
	c.DialTimeout = 10 * time.Second
	c.Mux.KeepAliveInterval = time.Second
	c.Mux.DeadAfter = 15 * time.Second
	return c
}

// quietServer is an httptest server whose own error log (TLS handshake
// failures, for instance) is discarded.
func quietServer(t *testing.T, h http.Handler, tlsOn bool) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tlsOn {
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(ts.Close)
	return ts
}

func dialErr(t *testing.T, cfg client.Config) (*client.DialError, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := client.Dial(ctx, cfg)
	if err == nil {
		_ = s.Close()
		t.Fatalf("Dial(%s) succeeded, want an error", cfg.URL)
	}
	var de *client.DialError
	if !errors.As(err, &de) {
		t.Fatalf("Dial error %v (%T), want a *DialError", err, err)
	}
	return de, err
}

// TestDialHTTPStatus: an answer other than 101 becomes one line naming the
// URL, the status, the server's own explanation when it is a sandmux
// server, and what to check.
func TestDialHTTPStatus(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		want      string // after "URL: "
		temporary bool
	}{
		{"401", http.StatusUnauthorized, "", "401 Unauthorized (check --token, --token-file or SANDMUX_TOKEN)", false},
		{"401 foreign body dropped", http.StatusUnauthorized, "Unauthorized by edge\n", "401 Unauthorized (check --token, --token-file or SANDMUX_TOKEN)", false},
		// The hint already says what sandmux's own 401 explanation would.
		{"401 sandmux detail not repeated", http.StatusUnauthorized, "sandmux: missing or wrong token (send Authorization: Bearer <token>)\n",
			"401 Unauthorized (check --token, --token-file or SANDMUX_TOKEN)", false},
		{"403", http.StatusForbidden, "", "403 Forbidden (check --token, SANDMUX_TOKEN and --header values such as e2b-traffic-access-token)", false},
		{"403 sandmux detail kept", http.StatusForbidden, "sandmux: origin not allowed\n",
			"403 Forbidden: origin not allowed", false},
		{"404", http.StatusNotFound, "404 page not found\n", "404 Not Found (check the URL and that the sandbox exists)", false},
		{"400 version", http.StatusBadRequest, "sandmux: unsupported protocol sandmux.v1; this server speaks sandmux.v2 (upgrade the older side)\n",
			"400 Bad Request: unsupported protocol sandmux.v1; this server speaks sandmux.v2 (upgrade the older side)", false},
		{"426", http.StatusUpgradeRequired, "", "426 Upgrade Required (is that a sandmux server, and are both sides up to date?)", false},
		{"502", http.StatusBadGateway, "port not open\n", "502 Bad Gateway (is `sandmux server` running in the sandbox on that port?)", true},
		{"503 shutting down", http.StatusServiceUnavailable, "sandmux: server is shutting down\n",
			"503 Service Unavailable: server is shutting down", true},
		{"504", http.StatusGatewayTimeout, "", "504 Gateway Timeout (is `sandmux server` running in the sandbox on that port?)", true},
		{"500", http.StatusInternalServerError, "", "500 Internal Server Error (the server or an edge proxy refused the WebSocket upgrade)", true},
		{"plain http 200", http.StatusOK, "<html>hello</html>\n", "200 OK (that is a plain HTTP server, not a WebSocket endpoint; check the URL and port)", false},
		// E2B's edge answers in JSON: its message says what happened, the
		// hint what to do.
		{"e2b not found", http.StatusNotFound, `{"sandboxId":"abc","message":"The sandbox was not found"}`,
			"404 Not Found: The sandbox was not found (check the URL and that the sandbox exists)", false},
		{"e2b port closed", http.StatusBadGateway, `{"sandboxId":"abc","message":"The sandbox is running but port is not open","port":"8081"}`,
			"502 Bad Gateway: The sandbox is running but port is not open (is `sandmux server` running in the sandbox on that port?)", true},
		{"e2b paused", http.StatusConflict, `{"sandboxId":"abc","message":"The sandbox is paused","code":409,"canAutoResume":false}`,
			"409 Conflict: The sandbox is paused (the sandbox is paused or changing state: resume it, or try again in a moment)", true},
		{"e2b too many", http.StatusTooManyRequests, `{"message":"The sandbox has too many concurrent incoming connections (limit: 100)","code":429}`,
			"429 Too Many Requests: The sandbox has too many concurrent incoming connections (limit: 100) (too many connections to the sandbox at once; try again in a moment)", true},
		{"json message made one safe line", http.StatusBadGateway, `{"message":"line one\nline two\u001b[31m ` + strings.Repeat("x", 200) + `"}`,
			"502 Bad Gateway: line one line two [31m " + strings.Repeat("x", 160-len("line one line two [31m ")) + "… (is `sandmux server` running in the sandbox on that port?)", true},
		{"431", http.StatusRequestHeaderFieldsTooLarge, "431 Request Header Fields Too Large",
			"431 Request Header Fields Too Large (the handshake's headers are too large: check the --header values)", false},
		{"json without a message", http.StatusBadGateway, `{"error":"x"}`, "502 Bad Gateway (is `sandmux server` running in the sandbox on that port?)", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := quietServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}), false)
			url := wsURL(ts.URL)
			de, err := dialErr(t, testConfig(url))
			if want := url + ": " + tt.want; err.Error() != want {
				t.Fatalf("error text\n  %s\nwant\n  %s", err, want)
			}
			if de.StatusCode != tt.status {
				t.Fatalf("StatusCode = %d, want %d", de.StatusCode, tt.status)
			}
			if de.Temporary() != tt.temporary {
				t.Fatalf("Temporary() = %v, want %v", de.Temporary(), tt.temporary)
			}
		})
	}
}

// TestDialNetworkErrors: failures before any HTTP answer.
func TestDialNetworkErrors(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		url := "ws://" + testutil.FreeAddr(t)
		de, err := dialErr(t, testConfig(url))
		want := url + ": connection refused (is `sandmux server` listening there?)"
		if err.Error() != want {
			t.Fatalf("error text\n  %s\nwant\n  %s", err, want)
		}
		if !de.Temporary() {
			t.Fatal("a refused connection should be worth retrying")
		}
	})

	t.Run("untrusted TLS certificate", func(t *testing.T) {
		ts := quietServer(t, http.NotFoundHandler(), true)
		url := wsURL(ts.URL)
		if !strings.HasPrefix(url, "wss://127.0.0.1:") {
			t.Fatalf("unexpected URL %s", url)
		}
		de, err := dialErr(t, testConfig(url))
		want := url + ": TLS certificate not trusted (pass the server's CA with --ca FILE, or --insecure to skip verification)"
		if err.Error() != want {
			t.Fatalf("error text\n  %s\nwant\n  %s", err, want)
		}
		if de.Temporary() {
			t.Fatal("an untrusted certificate is not worth retrying")
		}
		var ve *tls.CertificateVerificationError
		if !errors.As(err, &ve) {
			t.Fatalf("error %v does not unwrap to *tls.CertificateVerificationError", err)
		}
	})

	t.Run("wss to a server without TLS", func(t *testing.T) {
		ts := quietServer(t, http.NotFoundHandler(), false)
		url := "wss://" + strings.TrimPrefix(ts.URL, "http://")
		de, err := dialErr(t, testConfig(url))
		want := url + ": the server answered in plain HTTP, not TLS (use ws:// for a server without TLS, or check the port)"
		if err.Error() != want {
			t.Fatalf("error text\n  %s\nwant\n  %s", err, want)
		}
		if de.Temporary() {
			t.Fatal("a scheme that does not match the server is not worth retrying")
		}
	})

	// ws:// to a TLS port: each way a TLS server answers a plain HTTP
	// request that can be told from a silent close is said as such, and
	// not retried (through the agent, for 30 s).
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"ws to Go's HTTPS server", func(t *testing.T) string {
			return "ws://" + strings.TrimPrefix(quietServer(t, http.NotFoundHandler(), true).URL, "https://")
		}},
		{"ws to nginx's HTTPS port", func(t *testing.T) string {
			return "ws://" + testutil.Serve(t, func(c net.Conn) {
				_, _ = c.Read(make([]byte, 4096))
				_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: 220\r\nConnection: close\r\n\r\n"+
					"<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>The plain HTTP request was sent to HTTPS port</center>\r\n</body>\r\n</html>\r\n")
			}).Addr
		}},
		{"ws to a TLS port that answers with an alert", func(t *testing.T) string {
			return "ws://" + testutil.Serve(t, func(c net.Conn) {
				_, _ = c.Read(make([]byte, 4096))
				_, _ = c.Write([]byte{21, 3, 3, 0, 2, 2, 70}) // fatal protocol_version
			}).Addr
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url(t)
			de, err := dialErr(t, testConfig(url))
			want := url + ": the server speaks TLS on this port (use wss:// for a server with TLS)"
			if err.Error() != want {
				t.Fatalf("error text\n  %s\nwant\n  %s", err, want)
			}
			if de.Temporary() || !errors.Is(err, client.ErrTLSPort) {
				t.Fatalf("%v: want a lasting ErrTLSPort", err)
			}
		})
	}

	// A server past its --max-handshakes closes some connections
	// unread: said as such, not as net/http's "Get URL: EOF".
	t.Run("closed before any answer", func(t *testing.T) {
		url := "ws://" + testutil.Serve(t, func(net.Conn) {}).Addr
		de, err := dialErr(t, testConfig(url))
		want := url + ": the connection was closed before any answer (a busy server closes connections beyond its --max-handshakes: try again in a moment; else check that the port is `sandmux server`'s)"
		if err.Error() != want {
			t.Fatalf("error text\n  %s\nwant\n  %s", err, want)
		}
		if !de.Temporary() {
			t.Fatal("a connection closed unanswered should be worth retrying")
		}
	})

	// A TLS front whose upstream is down (or a middlebox) that resets
	// the connection in the TLS handshake: said in words, as a plain
	// connection closed unanswered is, not as net/http's "failed to
	// send handshake request: Get URL: read tcp A->B: read: connection
	// reset by peer".
	t.Run("reset in the TLS handshake", func(t *testing.T) {
		url := "wss://" + testutil.Serve(t, func(c net.Conn) {
			// Read the ClientHello so that the reset meets the
			// client's read, not its write.
			_, _ = c.Read(make([]byte, 512))
			_ = c.(*net.TCPConn).SetLinger(0)
			_ = c.Close()
		}).Addr
		de, err := dialErr(t, testConfig(url))
		want := url + ": the connection was reset before any answer (try again in a moment, as a server past its --max-handshakes resets connections; if it keeps happening, check the URL and your network)"
		if err.Error() != want {
			t.Fatalf("error text\n  %s\nwant\n  %s", err, want)
		}
		if !de.Temporary() {
			t.Fatal("a connection reset unanswered should be worth retrying")
		}
	})

	// --url naming an sshd port: the answer is an SSH banner, not HTTP.
	// Said as such, and not retried (through the agent, for 30 s).
	t.Run("not HTTP", func(t *testing.T) {
		url := "ws://" + testutil.Serve(t, func(c net.Conn) {
			_, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
			_, _ = io.Copy(io.Discard, c)
		}).Addr
		de, err := dialErr(t, testConfig(url))
		want := url + `: the server did not answer in HTTP: it sent "SSH-2.0-OpenSSH_9.2p1 Debian-2" (that port is not ` + "`sandmux server`'s; check the port in --url: the server listens on 8081)"
		if err.Error() != want {
			t.Fatalf("error text\n  %s\nwant\n  %s", err, want)
		}
		if de.Temporary() || !errors.Is(err, client.ErrNotHTTP) {
			t.Fatalf("%v: want a lasting ErrNotHTTP", err)
		}
	})

	t.Run("unresolvable host", func(t *testing.T) {
		// .invalid is reserved (RFC 6761): it never resolves.
		const url = "ws://nosuch.invalid:8081"
		cfg := testConfig(url)
		cfg.DialTimeout = 5 * time.Second
		de, err := dialErr(t, cfg)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			// A resolver that never answers: bounded by DialTimeout.
			if want := url + ": timed out (check the URL and your network)"; err.Error() != want {
				t.Fatalf("error text\n  %s\nwant\n  %s", err, want)
			}
		default:
			want := url + ": cannot resolve nosuch.invalid (check the host name, the sandbox id and your network)"
			if err.Error() != want {
				t.Fatalf("error text\n  %s\nwant\n  %s", err, want)
			}
			if de.Temporary() {
				t.Fatal("a name that does not exist is not worth retrying")
			}
		}
	})

	t.Run("handshake timeout", func(t *testing.T) {
		// A listener that accepts and never answers.
		silent := testutil.Serve(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
		url := "ws://" + silent.Addr
		cfg := testConfig(url)
		cfg.DialTimeout = 200 * time.Millisecond
		de, err := dialErr(t, cfg)
		if want := url + ": timed out (check the URL and your network)"; err.Error() != want {
			t.Fatalf("error text\n  %s\nwant\n  %s", err, want)
		}
		if !errors.Is(err, context.DeadlineExceeded) || !de.Temporary() {
			t.Fatalf("error %v: want context.DeadlineExceeded and Temporary", err)
		}
	})

	t.Run("caller cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s, err := client.Dial(ctx, testConfig("ws://127.0.0.1:9"))
		if err == nil {
			_ = s.Close()
			t.Fatal("Dial with a cancelled context succeeded")
		}
		var de *client.DialError
		if !errors.Is(err, context.Canceled) || errors.As(err, &de) {
			t.Fatalf("Dial = %v (%T), want context.Canceled itself", err, err)
		}
	})

	t.Run("invalid config", func(t *testing.T) {
		s, err := client.Dial(context.Background(), testConfig("http://127.0.0.1:9"))
		if err == nil {
			_ = s.Close()
		}
		if !errors.Is(err, client.ErrBadURL) {
			t.Fatalf("Dial = %v, want ErrBadURL", err)
		}
	})
}

// TestDialHandshake: what the client sends with the upgrade request.
func TestDialHandshake(t *testing.T) {
	got := make(chan http.Header, 1)
	ts := quietServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		w.WriteHeader(http.StatusForbidden)
	}), false)
	cfg := testConfig(wsURL(ts.URL))
	cfg.Token = "tok123"
	cfg.Header = http.Header{"E2b-Traffic-Access-Token": {"e2b-secret"}}
	_, _ = dialErr(t, cfg)
	h := <-got
	checks := []struct{ name, want string }{
		{"Authorization", "Bearer tok123"},
		{"E2b-Traffic-Access-Token", "e2b-secret"},
		{"Sec-Websocket-Extensions", ""}, // compression off: nothing offered
	}
	for _, c := range checks {
		if v := h.Get(c.name); v != c.want {
			t.Errorf("handshake header %s = %q, want %q", c.name, v, c.want)
		}
	}
	if p := h.Get("Sec-Websocket-Protocol"); !offers(p, mux.Subprotocol) {
		t.Errorf("offered subprotocols %q do not include %s", p, mux.Subprotocol)
	}
	if cfg.Header.Get("Authorization") != "" {
		t.Error("Dial modified the caller's Header")
	}
}

// TestDialTLS: a wss:// server is reachable with its CA configured.
func TestDialTLS(t *testing.T) {
	echo := testutil.EchoServer(t).Addr
	srv := newServer(t, echo)
	ts := quietServer(t, srv, true)
	cfg := testConfig(wsURL(ts.URL))
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	cfg.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	s := dial(t, cfg)
	if s.Raw() {
		t.Fatal("a sandmux server answered in raw mode")
	}
	roundTrip(t, s, "")
}

// TestSessionMux: against a sandmux server the session multiplexes and
// reports its end.
func TestSessionMux(t *testing.T) {
	echo := testutil.EchoServer(t).Addr
	srv := newServer(t, echo)
	ts := quietServer(t, srv, false)
	s := dial(t, testConfig(wsURL(ts.URL)))
	if s.Raw() || s.Mux() == nil || s.Done() == nil {
		t.Fatalf("Raw() = %v, Mux() = %v, Done() = %v; want a sandmux session", s.Raw(), s.Mux(), s.Done())
	}
	for range 3 {
		roundTrip(t, s, "")
		roundTrip(t, s, echo)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := s.OpenStream(ctx, "10.0.0.1:5432")
	var se *mux.StreamError
	if !errors.As(err, &se) || err.Error() != "server refused target 10.0.0.1:5432: not allowed (add --allow 10.0.0.1:5432 to `sandmux server` in the sandbox)" {
		t.Fatalf("OpenStream(not allowed) = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatal("Done() not closed after Close")
	}
}

// The session keeps the stream limit the server says in its upgrade's
// answer, in both protocol versions: the agent opens streams by it.
func TestSessionKnowsServerStreamLimit(t *testing.T) {
	_, url := testutil.SandmuxServer(t, func(c *server.Config) { c.MaxStreams = 7 })
	for _, noResume := range []bool{false, true} {
		cfg := testConfig(url)
		cfg.NoResume = noResume
		s := dial(t, cfg)
		if n := s.ServerMaxStreams(); n != 7 {
			t.Errorf("no-resume %v: ServerMaxStreams() = %d, want 7", noResume, n)
		}
		_ = s.Close()
	}
}

// TestRawFallback: a WebSocket server that picks no subprotocol (a plain
// websocat bridge) gets raw mode: one connection, to its one target.
func TestRawFallback(t *testing.T) {
	life, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	offered := make(chan string, 1)
	ts := quietServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		offered <- r.Header.Get("Sec-WebSocket-Protocol")
		ws, err := websocket.Accept(w, r, nil) // picks no subprotocol
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		nc := websocket.NetConn(life, ws, websocket.MessageBinary)
		defer nc.Close()
		_, _ = io.Copy(nc, nc)
	}), false)

	s := dial(t, testConfig(wsURL(ts.URL)))
	if p := <-offered; !offers(p, mux.Subprotocol) {
		t.Fatalf("client offered %q, want it to include %q", p, mux.Subprotocol)
	}
	if !s.Raw() || s.Mux() != nil || s.Done() != nil {
		t.Fatalf("Raw() = %v, Mux() = %v, Done() = %v; want raw mode", s.Raw(), s.Mux(), s.Done())
	}
	ctx, cancelOpen := context.WithTimeout(context.Background(), waitTimeout)
	defer cancelOpen()
	if _, err := s.OpenStream(ctx, "x:1"); !errors.Is(err, client.ErrRawTarget) {
		t.Fatalf("OpenStream(x:1) = %v, want ErrRawTarget", err)
	}
	want := "server does not speak sandmux (raw WebSocket bridge); it cannot pick a --target"
	if client.ErrRawTarget.Error() != want {
		t.Fatalf("ErrRawTarget text %q, want %q", client.ErrRawTarget, want)
	}
	c, err := s.OpenStream(ctx, "")
	if err != nil {
		t.Fatalf("OpenStream(\"\") = %v", err)
	}
	msg := []byte("SSH-2.0-OpenSSH_9.6\r\n")
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	back := make([]byte, len(msg))
	if _, err := io.ReadFull(c, back); err != nil || string(back) != string(msg) {
		t.Fatalf("echo = %q, %v", back, err)
	}
	if _, err := s.OpenStream(ctx, ""); !errors.Is(err, client.ErrRawUsed) {
		t.Fatalf("second OpenStream = %v, want ErrRawUsed", err)
	}
}

// dial dials cfg and closes the session when the test ends.
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

// roundTrip opens a stream to target and checks that bytes come back.
func roundTrip(t *testing.T, s *client.Session, target string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := s.OpenStream(ctx, target)
	if err != nil {
		t.Fatalf("OpenStream(%q): %v", target, err)
	}
	defer c.Close()
	msg := fmt.Sprintf("hello %q", target)
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	back := make([]byte, len(msg))
	if _, err := io.ReadFull(c, back); err != nil || string(back) != msg {
		t.Fatalf("echo = %q, %v", back, err)
	}
}

// newServer is a sandmux server forwarding to target; it is closed when
// the test ends, after the HTTP server registered later.
func newServer(t *testing.T, target string) *server.Server {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Target = target
	cfg.Mux = testConfig("ws://unused").Mux
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// TestDialFailureLeavesNoConnection: a refused upgrade must not leave its
// keep-alive connection open in a pool nobody uses again, or a retry loop
// against a 401 or 502 would pile up sockets and goroutines.
func TestDialFailureLeavesNoConnection(t *testing.T) {
	const dials = 5
	var open atomic.Int32
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	for range dials {
		_, _ = dialErr(t, testConfig(wsURL(ts.URL)))
	}
	if !testutil.Poll(waitTimeout, func() bool { return open.Load() == 0 }) {
		t.Fatalf("%d of %d refused handshakes still hold a connection", open.Load(), dials)
	}
}

// TestDialRawOption: Config.Raw offers no subprotocol, so even a sandmux
// server serves the one WebSocket in raw mode.
func TestDialRawOption(t *testing.T) {
	echo := testutil.EchoServer(t).Addr
	srv := newServer(t, echo)
	ts := quietServer(t, srv, false)
	cfg := testConfig(wsURL(ts.URL))
	cfg.Raw = true
	s := dial(t, cfg)
	if !s.Raw() {
		t.Fatal("Raw() = false with Config.Raw set")
	}
	roundTrip(t, s, "")
	if st := srv.Stats(); st.RawSessions != 1 {
		t.Fatalf("server stats %+v, want one raw session", st)
	}
}

// offers reports whether a Sec-WebSocket-Protocol value lists proto.
func offers(header, proto string) bool {
	for _, p := range strings.Split(header, ",") {
		if strings.TrimSpace(p) == proto {
			return true
		}
	}
	return false
}

// A session closed by its owner is never redialed to resume it, even when
// the server, closing on END, drops the WebSocket before Close is done:
// every Close costs the server exactly one upgrade. (The e2e metrics test
// once counted a second, refused as an unknown session.)
func TestCloseNeverResumes(t *testing.T) {
	srv, url := testutil.SandmuxServer(t, nil)
	const rounds = 30
	for i := range rounds {
		cfg := client.DefaultConfig()
		cfg.URL = url
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		sess, err := client.Dial(ctx, cfg)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		st, err := sess.OpenStream(ctx, "")
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if _, err := st.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		var b [1]byte
		if _, err := io.ReadFull(st, b[:]); err != nil {
			t.Fatal(err)
		}
		_ = sess.Close()
		cancel()
		if n := srv.Stats().Sessions; n != int64(i+1) {
			t.Fatalf("after %d sessions closed, the server saw %d upgrades: a closed session was redialed", i+1, n)
		}
	}
}

// A redirect is reported, not followed: following it would send the token
// and the extra headers to wherever it points, in clear text when it
// points from wss:// to http://.
func TestDialDoesNotFollowRedirects(t *testing.T) {
	var reached atomic.Int32
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		http.Error(w, "nope", http.StatusNotFound)
	}))
	defer sink.Close()
	to := sink.URL + "/elsewhere"
	front := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, to, http.StatusFound)
	}))
	defer front.Close()
	cfg := client.DefaultConfig()
	cfg.URL = "wss://" + front.Listener.Addr().String()
	cfg.Token = "s3cret"
	cfg.Header = http.Header{"E2b-Traffic-Access-Token": {"edge-secret"}}
	cfg.TLS = &tls.Config{InsecureSkipVerify: true}
	_, err := client.Dial(context.Background(), cfg)
	var de *client.DialError
	if !errors.As(err, &de) || de.StatusCode != http.StatusFound || de.Temporary() {
		t.Fatalf("dial: %v, want a lasting DialError with status 302", err)
	}
	if !strings.Contains(err.Error(), "redirects to "+to+"; sandmux does not follow redirects") {
		t.Errorf("error %q does not name where the redirect points", err)
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}
