package client_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/testutil"
)

// A wss:// server whose certificate does not check out, reached through
// an HTTP proxy that opened the tunnel, is the server's failure: its line
// speaks of the server's certificate and its CA, and does not blame the
// proxy.
func TestServerCertificateThroughProxyIsNotTheProxys(t *testing.T) {
	ts := tlsSandmuxServer(t)
	_, tport, _ := net.SplitHostPort(ts.Listener.Addr().String())
	p := testutil.StartConnectProxy(t, "")
	cfg := testConfig("wss://box.sandmux.invalid:" + tport)
	cfg.Proxy, _ = url.Parse(p.URL(""))
	de, err := dialErr(t, cfg)
	var pe *client.ProxyError
	// Its certificate is also for other names (Go checks the name
	// first), so the line speaks of the name, and of --ca as well.
	if errors.As(err, &pe) || !strings.HasPrefix(err.Error(), cfg.URL+": TLS certificate not valid for this host: ") || !strings.Contains(err.Error(), "a private CA also needs --ca FILE") {
		t.Fatalf("error text\n  %s\nwant the server's certificate named, with --ca's hint", err)
	}
	if de.Temporary() {
		t.Fatal("an untrusted server certificate is not worth dialing again")
	}
	if a := p.Asked(); len(a) != 1 {
		t.Fatalf("the proxy was asked for %q, want one tunnel", a)
	}
}

// An https:// proxy (HTTPS_PROXY=https://...) is spoken to over TLS, its
// certificate checked: the CONNECT, its credentials and the server's
// bytes, TLS again for wss://, ride inside.
func TestDialThroughHTTPSProxy(t *testing.T) {
	p := testutil.StartTLSConnectProxy(t, "alice:s3cret")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.CAPEM())

	_, srvURL := testutil.SandmuxServer(t, nil)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srvURL, "ws://"))
	ts := tlsSandmuxServer(t)
	_, tport, _ := net.SplitHostPort(ts.Listener.Addr().String())
	for _, u := range []string{"ws://box.sandmux.invalid:" + port, "wss://box.sandmux.invalid:" + tport} {
		cfg := testConfig(u)
		cfg.Proxy, _ = url.Parse(p.URL("alice:s3cret"))
		cfg.ProxyTLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		cfg.TLS = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the test server's own certificate
		echoThrough(t, dial(t, cfg))
	}
	if a := p.Asked(); len(a) != 2 || a[0] != "box.sandmux.invalid:"+port || a[1] != "box.sandmux.invalid:"+tport {
		t.Fatalf("the proxy was asked for %q, want a tunnel to each server", a)
	}

	t.Run("untrusted proxy", func(t *testing.T) {
		cfg := testConfig("ws://box.sandmux.invalid:" + port)
		cfg.Proxy, _ = url.Parse(p.URL("alice:s3cret"))
		de, err := dialErr(t, cfg)
		want := cfg.URL + ": HTTP proxy https://xxxxx@" + strings.TrimPrefix(p.URL(""), "https://") +
			": TLS certificate not trusted (the proxy's certificate is not trusted here: add its CA to the system's trust store or name it in SSL_CERT_FILE, or check HTTPS_PROXY)"
		if err.Error() != want {
			t.Fatalf("error text\n  %s\nwant\n  %s", err, want)
		}
		if de.Temporary() {
			t.Fatal("an untrusted proxy certificate is not worth dialing again")
		}
	})

	// A wrong password is told to go in the proxy's own URL, https://
	// kept: http:// would send it unencrypted, to a proxy that wants TLS.
	t.Run("wrong password", func(t *testing.T) {
		cfg := testConfig("ws://box.sandmux.invalid:" + port)
		cfg.Proxy, _ = url.Parse(p.URL("alice:wrong"))
		cfg.ProxyTLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		_, err := dialErr(t, cfg)
		if !strings.HasSuffix(err.Error(), "407 Proxy Authentication Required (give the proxy's user and password in the proxy URL: https://user:password@proxy:port)") {
			t.Fatalf("error text\n  %s\nwant the hint to name an https:// URL", err)
		}
	})

	// HTTPS_PROXY=https://proxy:3128 for a plain proxy: the variable's
	// name says https, the proxy's own scheme is http.
	t.Run("plain proxy named https", func(t *testing.T) {
		plain := testutil.StartConnectProxy(t, "")
		cfg := testConfig("ws://box.sandmux.invalid:" + port)
		cfg.Proxy, _ = url.Parse("https" + strings.TrimPrefix(plain.URL("alice:s3cret"), "http"))
		de, err := dialErr(t, cfg)
		if want := "(the proxy does not speak TLS: write its URL with http://, as http://USER:PASSWORD@" + strings.TrimPrefix(plain.URL(""), "http://") + ")"; !strings.HasSuffix(err.Error(), want) || de.Temporary() {
			t.Fatalf("error text\n  %s\nwant the hint to write http://, and a lasting error", err)
		}
	})
}

// The plain proxy written https:// is told the URL to write: its host and
// the port it was dialled on, with where its credentials go.
func TestPlainProxyNamedHTTPSHint(t *testing.T) {
	for in, want := range map[string]string{
		"https://proxy.corp:3128":       "http://proxy.corp:3128",
		"https://proxy.corp":            "http://proxy.corp:443",
		"https://xxxxx@[::1]:3128":      "http://USER:PASSWORD@[::1]:3128",
		"https://%zz":                   "http://proxy:port",
		"https://xxxxx@proxy.corp:8443": "http://USER:PASSWORD@proxy.corp:8443",
	} {
		pe := &client.ProxyError{Proxy: in, Err: tls.RecordHeaderError{}}
		if got := pe.Hint(); got != "the proxy does not speak TLS: write its URL with http://, as "+want {
			t.Errorf("the hint for %s: %q, want it to show %s", in, got, want)
		}
	}
}
