package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sandmux/sandmux/mux"
	"github.com/sandmux/sandmux/server"
)

// TestPublicListenerCapsHeaders: the public listener is reachable by
// anyone, and a request's header is held in full before the token is
// checked. Go's default cap (1 MiB) let a stranger make the server hold
// about 1.2 MiB per connection for --header-timeout; a header past
// maxHeaderBytes is now refused (431) unread, while an ordinary upgrade,
// with an edge's headers added, still reaches the token check.
func TestPublicListenerCapsHeaders(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Token = "the-token"
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := publicHTTPServer(srv, 10*time.Second, slog.New(slog.DiscardHandler))
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	defer func() {
		// Shutdown, not Close: it waits for the connection refused with
		// 431, which net/http lingers on for half a second.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	}()

	status := func(extra int) int {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		var b strings.Builder
		fmt.Fprintf(&b, "GET / HTTP/1.1\r\nHost: 8081-x.e2b.app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer wrong\r\n")
		for i := 0; extra > 0; i++ {
			n := min(extra, 4000)
			fmt.Fprintf(&b, "X-Edge-%d: %s\r\n", i, strings.Repeat("a", n))
			extra -= n
		}
		b.WriteString("\r\n")
		go func() { _, _ = c.Write([]byte(b.String())) }()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(16 << 10); got != http.StatusUnauthorized {
		t.Errorf("an upgrade with 16 KiB of edge headers: status %d, want 401 from the token check", got)
	}
	if got := status(256 << 10); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("an upgrade with a 256 KiB header: status %d, want 431", got)
	}
}

// The public listener keeps --max-handshakes: with one upgrade that
// never says its hello holding the only place, an upgrade is answered
// 503 at once (the server's hooks must be the http.Server's for that).
func TestPublicListenerLimitsHandshakes(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.MaxHandshakes = 1
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := publicHTTPServer(srv, 10*time.Second, slog.New(slog.DiscardHandler))
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	defer func() {
		_ = hs.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	}()
	const upgrade = "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	ask := func(req string) *http.Response {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		go func() { _, _ = c.Write([]byte(req)) }()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}
	if resp := ask(upgrade + "Sec-WebSocket-Protocol: " + mux.SubprotocolResumable + "\r\n\r\n"); resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("the first upgrade: %d", resp.StatusCode)
	}
	resp := ask(upgrade + "\r\n")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("an upgrade while another waiting for its hello holds --max-handshakes 1: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
