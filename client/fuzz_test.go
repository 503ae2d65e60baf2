package client_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
)

// FuzzExpandURL: ExpandURL never panics; what it accepts is a ws:// or
// wss:// URL with a host in which no "{host}" is left; and the host name
// (ssh's %h, which a hostile ssh_config or command line may choose) can
// only fill its placeholder: with the E2B template it can never move the
// connection, and the token sent on it, to a host outside e2b.app or add
// a path, query or credentials.
// Seeds live in testdata/fuzz/FuzzExpandURL.
func FuzzExpandURL(f *testing.F) {
	f.Fuzz(func(t *testing.T, template, host string) {
		got, err := client.ExpandURL(template, host)
		if err != nil {
			if !errors.Is(err, client.ErrBadURL) {
				t.Fatalf("ExpandURL(%q, %q) failed without ErrBadURL: %v", template, host, err)
			}
		} else {
			checkWS(t, got)
			if strings.Contains(template, "{host}") && strings.Contains(got, "{host}") {
				t.Fatalf("ExpandURL(%q, %q) = %q still holds {host}", template, host, got)
			}
			if !strings.Contains(template, "{host}") && got != template {
				t.Fatalf("ExpandURL(%q, %q) = %q changed a template without {host}", template, host, got)
			}
			checkIPv6Filled(t, template, host, got)
		}

		got, err = client.ExpandURL(client.DefaultURLTemplate, host)
		if err != nil {
			if !errors.Is(err, client.ErrBadURL) {
				t.Fatalf("ExpandURL(default, %q) failed without ErrBadURL: %v", host, err)
			}
			return
		}
		u := checkWS(t, got)
		if u.Scheme != "wss" || u.User != nil || u.Port() != "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" ||
			!strings.HasPrefix(u.Host, "8081-") || !strings.HasSuffix(u.Host, ".e2b.app") || u.Host != "8081-"+host+".e2b.app" {
			t.Fatalf("ExpandURL(default, %q) = %q: the host name escaped its placeholder (%#v)", host, got, u)
		}
	})
}

// checkIPv6Filled: a host with a colon (an IPv6 address, the only kind
// ExpandURL takes) is the filled URL's whole host, the same address, and
// the template's port is the URL's.
func checkIPv6Filled(t *testing.T, template, host, got string) {
	t.Helper()
	if !strings.Contains(template, "{host}") || !strings.Contains(host, ":") {
		return
	}
	u := checkWS(t, got)
	want, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	addr, err2 := netip.ParseAddr(u.Hostname())
	if err != nil || err2 != nil || addr != want || u.User != nil || !strings.HasPrefix(u.Host, "[") {
		t.Fatalf("ExpandURL(%q, %q) = %q: the address is not the URL's host (%#v)", template, host, got, u)
	}
	tu, err := url.Parse(strings.ReplaceAll(template, "{host}", "h"))
	if err == nil && tu.Port() != u.Port() {
		t.Fatalf("ExpandURL(%q, %q) = %q: port %q, the template's %q", template, host, got, u.Port(), tu.Port())
	}
}

func checkWS(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("accepted %q, which does not parse: %v", s, err)
	}
	if (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" || u.Hostname() == "" {
		t.Fatalf("accepted %q: scheme %q, host %q", s, u.Scheme, u.Host)
	}
	return u
}

// FuzzClientSession is a hostile server: it accepts the upgrade (picking
// sandmux.v2 when v2 is set, else sandmux.v1), then sends the input as one
// to four binary messages (for v2 the first is read as the welcome) and
// hangs up. Dialing, opening a stream and closing the session must all
// return within their bounds, without a panic, whatever it sends; and
// (for the seeds) no goroutine may be left behind (see TestMain).
// Seeds live in testdata/fuzz/FuzzClientSession.
func FuzzClientSession(f *testing.F) {
	var (
		mu   sync.Mutex
		msgs [][]byte
		v2   bool
		wg   sync.WaitGroup
	)
	life, stop := context.WithCancel(context.Background())
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		mu.Lock()
		send, resumable := msgs, v2
		mu.Unlock()
		proto := mux.Subprotocol
		if resumable {
			proto = mux.SubprotocolResumable
		}
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{proto}, CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx, cancel := context.WithTimeout(life, 5*time.Second)
		defer cancel()
		if resumable {
			if _, err := mux.ReadHello(ctx, ws); err != nil {
				return
			}
		}
		go func() { // drain what the client sends
			for {
				if _, _, err := ws.Read(ctx); err != nil {
					return
				}
			}
		}()
		for _, m := range send {
			if err := ws.Write(ctx, websocket.MessageBinary, m); err != nil {
				return
			}
		}
		_ = ws.Close(websocket.StatusNormalClosure, "")
	}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.Start()
	f.Cleanup(func() { stop(); ts.Close(); wg.Wait() })
	url := wsURL(ts.URL)

	f.Fuzz(func(t *testing.T, data []byte, parts uint8, resumable bool) {
		mu.Lock()
		msgs, v2 = testutil.Split(data, parts), resumable
		mu.Unlock()
		cfg := testConfig(url)
		cfg.DialTimeout = 2 * time.Second
		cfg.Mux.HeaderTimeout = 500 * time.Millisecond
		cfg.Resume.Grace = 300 * time.Millisecond
		cfg.Backoff = client.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond, StableAfter: time.Second}
		start := time.Now()
		sess, err := client.Dial(context.Background(), cfg)
		if err != nil {
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("Dial failed after %v: %v", took, err)
			}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := sess.OpenStream(ctx, "")
		cancel()
		if err == nil {
			_ = c.Close()
		}
		closed := make(chan struct{})
		go func() { _ = sess.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("Session.Close did not return within 10s")
		}
	})
}
