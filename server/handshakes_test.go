package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/neterrno"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
	"github.com/sandmux/sandmux/server"
)

// upgradeRequest is a WebSocket upgrade in raw mode, as websocat sends.
const upgradeRequest = "GET / HTTP/1.1\r\nHost: sandbox\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
	"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"

// stranger opens a TCP connection to s that sends nothing (yet), closed
// when the test ends.
func stranger(t *testing.T, s *testServer) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(s.url, "ws://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// halfway is a connection upgraded to sandmux.v2 that sends no hello:
// its handshake goes on, in the handler, until --header-timeout. Such a
// connection holds its place at the limit; one that has sent no request
// yet makes way for a newcomer.
func halfway(t *testing.T, s *testServer) net.Conn {
	t.Helper()
	return rawUpgrade(t, s.url, mux.SubprotocolResumable)
}

// askUpgrade sends an upgrade on c and reads the answer: nil with an
// error if the connection ended without one.
func askUpgrade(t *testing.T, c net.Conn) (*http.Response, string, error) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(hardWait))
	if _, err := io.WriteString(c, upgradeRequest); err != nil {
		return nil, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b), nil
}

// Connections that never finish their handshake (the sandbox's port is
// public: anyone can open them, token or not) were bounded only by
// --header-timeout each, and by nothing in number: every one held a
// goroutine and buffers. At MaxHandshakes of them the next are answered
// 503 with Retry-After, as many again, and the rest are closed unread;
// the log says so once, not once per connection. Once the strangers go
// away, clients get sessions again.
func TestHandshakeLimit(t *testing.T) {
	s, logs := logServer(t, testutil.EchoServer(t).Addr, func(c *server.Config) { c.MaxHandshakes = 2 })
	s.srv.SetBusyAnswerLimit(time.Minute)
	held := []net.Conn{halfway(t, s), halfway(t, s)}

	busy := stranger(t, s)
	resp, body, err := askUpgrade(t, busy)
	if err != nil {
		t.Fatalf("an upgrade past the limit: %v, want a 503", err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(body, "sandmux: server busy: 2 connections are still in their handshake (--max-handshakes 2); retry in a moment") {
		t.Fatalf("an upgrade past the limit: %d, Retry-After %q, %q; want 503 saying the server is busy, with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// Once the one answered has gone (its close is the server's to see,
	// after the answer: a place freed between the next ones' arrivals
	// would go to the last), two more fill the places of those answered
	// 503; the next is closed without an answer.
	_ = busy.Close()
	testutil.WaitFor(t, hardWait, "the answered connection let go", func() bool { _, b, _ := s.srv.HandshakeCounts(); return b == 0 })
	stranger(t, s)
	stranger(t, s)
	if resp, _, err := askUpgrade(t, stranger(t, s)); err == nil {
		t.Fatalf("an upgrade past twice the limit got %d, want the connection closed", resp.StatusCode)
	}
	testutil.WaitFor(t, hardWait, "the refusals counted", func() bool { return s.srv.Stats().RefusedHandshakes == 4 })
	if n := testutil.CountLines(logs.String(), "refusing connections"); n != 1 {
		t.Errorf("%d log lines for 4 refused connections, want 1:\n%s", n, logs.String())
	}
	waitLog(t, logs, "refusing connections", "max_handshakes=2", "in_handshake=2")

	for _, c := range held {
		_ = c.Close()
	}
	// Those answered 503 still hold their places: they are not the
	// limit, only its overflow.
	testutil.WaitFor(t, hardWait, "a session once the strangers left", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), hardWait)
		defer cancel()
		sess, err := client.Dial(ctx, clientConfig(s.url))
		if err != nil {
			return false
		}
		_ = sess.Close()
		return true
	})
}

// A connection answered 503 at the limit that does not send its request
// is closed after busyAnswerLimit, not after --header-timeout: the
// overflow holds what the limit would otherwise hold.
func TestHandshakeLimitOverflowIsBrief(t *testing.T) {
	s, _ := logServer(t, testutil.EchoServer(t).Addr, func(c *server.Config) {
		c.MaxHandshakes = 1
		c.Mux.HeaderTimeout = 10 * time.Minute
	})
	s.srv.SetBusyAnswerLimit(50 * time.Millisecond)
	halfway(t, s)
	late := stranger(t, s)
	_ = late.SetReadDeadline(time.Now().Add(hardWait))
	start := time.Now()
	_, err := late.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("a silent connection over the limit was held for %s", hardWait)
	}
	if d := time.Since(start); d > hardWait/2 {
		t.Errorf("a silent connection over the limit was closed after %s", d)
	}
}

// The limit is on connections, never on streams: a burst of ssh
// connections through one agent are streams on its session, which no
// stranger in the handshake holds back. A session's own connection is
// given back once the session starts (sandmux.v2, v1 and raw alike).
func TestHandshakeLimitSparesSessionsAndStreams(t *testing.T) {
	s, _ := logServer(t, testutil.EchoServer(t).Addr, func(c *server.Config) { c.MaxHandshakes = 1 })
	var sessions []*client.Session
	for _, v1 := range []bool{false, true} {
		for range 3 { // one after another: each must give its place back
			cfg := clientConfig(s.url)
			cfg.NoResume = v1 // sandmux.v1
			ctx, cancel := context.WithTimeout(context.Background(), hardWait)
			sess, err := client.Dial(ctx, cfg)
			cancel()
			if err != nil {
				t.Fatalf("session %d at a limit of 1: %v", len(sessions), err)
			}
			t.Cleanup(func() { _ = sess.Close() })
			sessions = append(sessions, sess)
			// A client does not wait for the server's welcome: the
			// next dial could come while this one still counts.
			testutil.WaitFor(t, hardWait, "the session started", func() bool { return s.srv.Stats().ActiveSessions == len(sessions) })
		}
	}
	for i := range 2 { // raw mode
		wsDial(t, s.url)
		testutil.WaitFor(t, hardWait, "the raw connection started", func() bool { return s.srv.Stats().ActiveRaw == i+1 })
	}

	halfway(t, s) // holds the one place
	resp, _, err := askUpgrade(t, stranger(t, s))
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("an upgrade while a stranger holds the place: %v, %v; want 503", resp, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		sess := sessions[i%len(sessions)]
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), hardWait)
			defer cancel()
			c, err := sess.OpenStream(ctx, "")
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			if _, err := echoCheck(c, 4<<10); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a stream while a stranger holds the handshake limit: %v", err)
	}
}

// A connection that has not sent its request makes way for a newcomer at
// the limit: one that sent nothing, one that trickles its header, and a
// keep-alive one idle between requests. 64 connections, each asking
// GET /healthz every few seconds, held every place of a server with a
// token, and every client, resumes too, got 503 for as long as they went
// on: a denial of service from anyone on the internet at eight requests
// a second. Places held by requests in the handler (an upgrade waiting
// for its hello) are kept.
func TestHandshakeLimitWaitingConnectionsMakeWay(t *testing.T) {
	s, logs := logServer(t, testutil.EchoServer(t).Addr, func(c *server.Config) { c.MaxHandshakes = 4 })
	s.srv.SetBusyAnswerLimit(time.Minute)
	upgrading := halfway(t, s)
	silent := stranger(t, s)
	trickling := stranger(t, s)
	if _, err := io.WriteString(trickling, "GET /healthz HTTP/1.1\r\nHost: sandbox\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	idle := stranger(t, s)
	_ = idle.SetDeadline(time.Now().Add(hardWait))
	if _, err := io.WriteString(idle, "GET /healthz HTTP/1.1\r\nHost: sandbox\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("health check: %v, %v", resp, err)
	}
	_ = resp.Body.Close()
	// The answer reaches the client before net/http marks its connection
	// idle (ConnState): until then it is being served and makes no way,
	// and the third newcomer below would find none to push out (CI saw
	// it under load).
	testutil.WaitFor(t, hardWait, "the health check's connection idle", func() bool { return s.srv.Serving() == 0 })

	// Three newcomers push out the three waiting, oldest first; a client
	// then pushes out the first newcomer.
	for range 3 {
		stranger(t, s)
	}
	for name, c := range map[string]net.Conn{"silent": silent, "trickling": trickling, "idle keep-alive": idle} {
		_ = c.SetReadDeadline(time.Now().Add(hardWait))
		// Closed with bytes it sent still unread by the server (the
		// trickled header, when its reader had not yet run: CI saw it
		// under load), the kernel resets it: closed all the same.
		if _, err := io.Copy(io.Discard, c); err != nil && !neterrno.Is(err, syscall.ECONNRESET) {
			t.Errorf("the %s connection: %v, want it closed to make way", name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), hardWait)
	sess, err := client.Dial(ctx, clientConfig(s.url))
	cancel()
	if err != nil {
		t.Fatalf("a client while waiting connections fill the handshake limit: %v", err)
	}
	_ = sess.Close()
	waitLog(t, logs, "refusing connections", "made_way=1")
	testutil.WaitFor(t, hardWait, "the connections that made way counted", func() bool { return s.srv.Stats().RefusedHandshakes == 4 })
	// The upgrade in its handshake kept its place: it still gets its
	// session once it says hello.
	_ = upgrading.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := upgrading.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the upgrade waiting for its hello: %v, want it kept", err)
	}
}

// At --max-handshakes 1 the 503's body reads right: it said "1
// connections are still in their handshake".
func TestHandshakeLimitOfOne(t *testing.T) {
	s, _ := logServer(t, testutil.EchoServer(t).Addr, func(c *server.Config) { c.MaxHandshakes = 1 })
	s.srv.SetBusyAnswerLimit(time.Minute)
	halfway(t, s)
	resp, body, err := askUpgrade(t, stranger(t, s))
	const want = "sandmux: server busy: 1 connection is still in its handshake (--max-handshakes 1); retry in a moment"
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, want) {
		t.Fatalf("an upgrade past a limit of 1: %v, %q; want 503 saying %q", err, body, want)
	}
}
