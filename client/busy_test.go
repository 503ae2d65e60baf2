package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/testutil"
)

// busyBody is what a sandmux server at its --max-handshakes answers.
const busyBody = "sandmux: server busy: 64 connections are still in their handshake (--max-handshakes 64); retry in a moment\n"

// busyServer answers the first n upgrades (all, if n < 0) as a sandmux
// server at its --max-handshakes does, with Retry-After unless noRetry,
// and hands the rest to next.
func busyServer(t *testing.T, n int32, noRetry bool, next http.Handler) (url string, asked *atomic.Int32) {
	asked = &atomic.Int32{}
	ts := quietServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k := asked.Add(1); n < 0 || k <= n {
			if !noRetry {
				w.Header().Set("Retry-After", "1")
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, busyBody)
			return
		}
		next.ServeHTTP(w, r)
	}), false)
	return wsURL(ts.URL), asked
}

// A server busy with connections in their handshake answers 503 with
// Retry-After; a dial for one stream (a --no-agent proxy) dials again
// when it says, within its dial limit, instead of failing on the first
// refusal as it did.
func TestDialStreamRetriesBusyServer(t *testing.T) {
	url, asked := busyServer(t, 2, false, newServer(t, testutil.EchoServer(t).Addr))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	echoThroughDialStream(ctx, t, url, "a server busy twice")
	if n := asked.Load(); n != 3 {
		t.Errorf("%d upgrades, want 3 (two refused as busy)", n)
	}
}

// A busy refusal that outlasts the dial's limit is the error, in one line
// saying the server is busy. A 503 that names no Retry-After (the session
// limit, a shutdown) is not retried by the dial, nor is anything by Dial,
// whose caller (the agent) retries with its own backoff and tells waiting
// proxies the last refusal.
func TestDialGivesUpOnBusyServer(t *testing.T) {
	for _, tt := range []struct {
		name               string
		noRetry, oneStream bool
		minAsked, maxAsked int32
	}{
		{"busy", false, true, 2, 3},
		{"no Retry-After", true, true, 1, 1},
		{"Dial", false, false, 1, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url, asked := busyServer(t, -1, tt.noRetry, nil)
			cfg := testConfig(url)
			cfg.DialTimeout = 2600 * time.Millisecond // room for one or two more tries
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			start := time.Now()
			var err error
			if tt.oneStream {
				var closeFn func()
				if _, closeFn, err = client.DialStream(ctx, cfg, ""); err == nil {
					closeFn()
				}
			} else {
				var s *client.Session
				if s, err = client.Dial(ctx, cfg); err == nil {
					_ = s.Close()
				}
			}
			if d := time.Since(start); d > cfg.DialTimeout+time.Second {
				t.Errorf("gave up after %s, with a dial limit of %s", d, cfg.DialTimeout)
			}
			var de *client.DialError
			want := cfg.URL + ": " + "503 Service Unavailable: " + strings.TrimSuffix(strings.TrimPrefix(busyBody, "sandmux: "), "\n")
			if !errors.As(err, &de) || err.Error() != want || !de.Temporary() {
				t.Fatalf("error %v, want a temporary DialError %q", err, want)
			}
			if n := asked.Load(); n < tt.minAsked || n > tt.maxAsked {
				t.Errorf("%d upgrades, want %d to %d", n, tt.minAsked, tt.maxAsked)
			}
		})
	}
}

// droppingServer closes the connection of the first n upgrades (all, if
// n < 0) unanswered, as a server past twice its --max-handshakes or an
// edge dropping a connection does, and hands the rest to next.
func droppingServer(t *testing.T, n int32, next http.Handler) (url string, asked *atomic.Int32) {
	asked = &atomic.Int32{}
	ts := quietServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k := asked.Add(1); n < 0 || k <= n {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = c.Close()
			}
			return
		}
		next.ServeHTTP(w, r)
	}), false)
	return wsURL(ts.URL), asked
}

// A --no-agent ssh whose first connection was dropped before any answer
// (the chaos run: 7-12 such ssh a run) failed on it, though nothing of
// its session had been sent. The dial for one stream tries once more;
// a second drop is the error, in the words that say what happened.
func TestDialStreamRedialsOnceAfterADrop(t *testing.T) {
	url, asked := droppingServer(t, 1, newServer(t, testutil.EchoServer(t).Addr))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	echoThroughDialStream(ctx, t, url, "a server that dropped the first connection")
	if n := asked.Load(); n != 2 {
		t.Errorf("%d upgrades, want 2 (one dropped)", n)
	}

	url, asked = droppingServer(t, -1, nil)
	_, _, err := client.DialStream(ctx, testConfig(url), "")
	if err == nil || !strings.Contains(err.Error(), ": the connection was closed before any answer (") {
		t.Fatalf("DialStream to a server that drops every connection: %v", err)
	}
	if n := asked.Load(); n != 2 {
		t.Errorf("%d upgrades, want 2: one redial, not a loop", n)
	}
}

// echoThroughDialStream dials one stream to url's echo target with
// DialStream and checks that a message comes back whole; server names
// the server in a failure.
func echoThroughDialStream(ctx context.Context, t *testing.T, url, server string) {
	t.Helper()
	conn, closeFn, err := client.DialStream(ctx, testConfig(url), "")
	if err != nil {
		t.Fatalf("DialStream to %s: %v", server, err)
	}
	defer closeFn()
	echoBack(t, conn, "through "+server)
}

// A dial again after a busy refusal that the dial's limit cuts short
// (a slow server, a loaded machine) gives the refusal, which says why,
// not a timeout: on a loaded CI machine the last retry of
// TestDialGivesUpOnBusyServer, begun just inside the limit, was cut.
func TestDialStreamCutShortGivesTheRefusal(t *testing.T) {
	var asked atomic.Int32
	ts := quietServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if asked.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, busyBody)
			return
		}
		<-r.Context().Done() // no answer until the client gives up
	}), false)
	cfg := testConfig(wsURL(ts.URL))
	cfg.DialTimeout = 2600 * time.Millisecond // room for the one retry
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, _, err := client.DialStream(ctx, cfg, "")
	var de *client.DialError
	want := cfg.URL + ": " + "503 Service Unavailable: " + strings.TrimSuffix(strings.TrimPrefix(busyBody, "sandmux: "), "\n")
	if !errors.As(err, &de) || err.Error() != want || !de.Temporary() {
		t.Fatalf("error %v, want the busy refusal %q", err, want)
	}
	if n := asked.Load(); n != 2 {
		t.Errorf("%d upgrades, want 2 (the retry cut short)", n)
	}
}
