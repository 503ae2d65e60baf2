package client_test

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/server"
)

// A client given an HTTP proxy (HTTPS_PROXY) reaches the server through
// a CONNECT tunnel, with the proxy's credentials from its URL, and says
// so plainly when the proxy refuses.
func TestDialThroughHTTPProxy(t *testing.T) {
	_, srvURL := testutil.SandmuxServer(t, nil)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srvURL, "ws://"))
	serverURL := "ws://box.sandmux.invalid:" + port // resolved by the proxy alone

	for _, tt := range []struct{ name, auth, userinfo string }{
		{"open proxy", "", ""},
		{"proxy with a password", "alice:s3cret", "alice:s3cret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := testutil.StartConnectProxy(t, tt.auth)
			cfg := testConfig(serverURL)
			cfg.Proxy, _ = url.Parse(p.URL(tt.userinfo))
			echoThrough(t, dial(t, cfg))
			if a := p.Asked(); len(a) != 1 || a[0] != "box.sandmux.invalid:"+port {
				t.Fatalf("the proxy was asked for %q, want one tunnel to box.sandmux.invalid:%s", a, port)
			}
		})
	}

	t.Run("wss", func(t *testing.T) {
		ts := tlsSandmuxServer(t)
		_, tport, _ := net.SplitHostPort(ts.Listener.Addr().String())
		p := testutil.StartConnectProxy(t, "")
		ccfg := testConfig("wss://box.sandmux.invalid:" + tport)
		ccfg.Proxy, _ = url.Parse(p.URL(""))
		ccfg.TLS = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the test server's own certificate
		echoThrough(t, dial(t, ccfg))
	})

	t.Run("proxy wants a password", func(t *testing.T) {
		p := testutil.StartConnectProxy(t, "alice:s3cret")
		cfg := testConfig(serverURL)
		cfg.Proxy, _ = url.Parse(p.URL("alice:wrong"))
		de, err := dialErr(t, cfg)
		want := serverURL + ": HTTP proxy http://xxxxx@" + strings.TrimPrefix(p.URL(""), "http://") +
			" refused the tunnel: 407 Proxy Authentication Required (give the proxy's user and password in the proxy URL: http://user:password@proxy:port)"
		if err.Error() != want {
			t.Fatalf("error text\n  %s\nwant\n  %s", err, want)
		}
		var pe *client.ProxyError
		if de.Temporary() || !errors.As(err, &pe) {
			t.Fatalf("%v: want a lasting ProxyError", err)
		}
	})

	// A proxy that takes the connection and never answers CONNECT: the
	// timeout names the proxy, not the server.
	t.Run("silent proxy", func(t *testing.T) {
		proxy := testutil.Serve(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
		cfg := testConfig(serverURL)
		cfg.Proxy, _ = url.Parse("http://" + proxy.Addr)
		cfg.DialTimeout = 300 * time.Millisecond
		de, err := dialErr(t, cfg)
		want := serverURL + ": HTTP proxy http://" + proxy.Addr + ": timed out (check HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY)"
		if err.Error() != want {
			t.Fatalf("error text\n  %s\nwant\n  %s", err, want)
		}
		if !de.Temporary() {
			t.Fatal("a proxy that did not answer in time is worth asking again")
		}
	})

	t.Run("only http, https and socks5 proxies", func(t *testing.T) {
		cfg := testConfig(serverURL)
		cfg.Proxy, _ = url.Parse("ftp://127.0.0.1:3128")
		if err := cfg.Validate(); !errors.Is(err, client.ErrInvalidConfig) || !strings.Contains(err.Error(), "only http:// and https:// (HTTP CONNECT), socks5:// and socks5h:// proxies") {
			t.Fatalf("validate: %v", err)
		}
	})
}

// A malformed HTTP_PROXY ("http://user:pw@proxy:3128x") comes out of
// net/http's environment reading as "http://http://user:pw@...", with
// the password in the URL's path: refused, and never shown.
func TestMalformedProxyNotShown(t *testing.T) {
	for _, raw := range []string{"http://http://alice:s3cret@proxy:3128x", "http://alice:s3cret@proxy:99999", "http://alice:s3cret@proxy:3128/?pw=s3cret"} {
		p, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig("ws://box.sandmux.invalid:8081")
		cfg.Proxy = p
		err = cfg.Validate()
		if !errors.Is(err, client.ErrInvalidConfig) || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("%s: validate: %v", raw, err)
		}
		if s := client.RedactProxy(p); strings.Contains(s, "s3cret") {
			t.Fatalf("RedactProxy(%s) = %s", raw, s)
		}
	}
}

// tlsSandmuxServer is a sandmux server behind TLS (httptest's own
// certificate) whose streams reach an echo server, until the test ends.
func tlsSandmuxServer(t *testing.T) *httptest.Server {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Target = testutil.EchoServer(t).Addr
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	t.Cleanup(func() { ts.CloseClientConnections(); _ = srv.Close(); ts.Close() })
	return ts
}
