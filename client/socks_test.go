package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/testutil"
)

// echoThrough opens a stream on sess and checks that bytes come back.
func echoThrough(t *testing.T, sess *client.Session) {
	t.Helper()
	st, err := sess.OpenStream(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	echoBack(t, st, "through the proxy")
}

// echoBack writes msg to an echo target's stream and checks that it comes
// back whole.
func echoBack(t *testing.T, rw io.ReadWriter, msg string) {
	t.Helper()
	if _, err := io.WriteString(rw, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(rw, got); err != nil || string(got) != msg {
		t.Fatalf("echo %q, %v", got, err)
	}
}

// A client given a SOCKS5 proxy (ALL_PROXY=socks5h://…, as curl reads
// it) reaches the server through it: socks5h:// hands the proxy the
// server's name, socks5:// resolves it here and hands over the address;
// the proxy's user and password come from its URL.
func TestDialThroughSOCKSProxy(t *testing.T) {
	_, srvURL := testutil.SandmuxServer(t, nil)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srvURL, "ws://"))
	serverURL := "ws://localhost:" + port

	for _, tt := range []struct{ name, scheme, auth, userinfo string }{
		{"socks5h", "socks5h", "", ""},
		{"socks5", "socks5", "", ""},
		{"socks5h with a password", "socks5h", "alice:s3cret", "alice:s3cret"},
		{"socks5 with a password", "socks5", "alice:s3cret", "alice:s3cret"},
		{"open proxy, password given anyway", "socks5h", "", "alice:s3cret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := testutil.StartSOCKSProxy(t, tt.auth)
			cfg := testConfig(serverURL)
			cfg.Proxy, _ = url.Parse(p.URL(tt.scheme, tt.userinfo))
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			echoThrough(t, dial(t, cfg))
			a := p.Asked()
			if len(a) != 1 {
				t.Fatalf("the proxy was asked for %q, want one connection", a)
			}
			host, aport, _ := net.SplitHostPort(a[0])
			if aport != port {
				t.Fatalf("the proxy was asked for %s, want port %s", a[0], port)
			}
			if isIP := net.ParseIP(host) != nil; isIP != (tt.scheme == "socks5") || tt.scheme == "socks5h" && host != "localhost" {
				t.Fatalf("%s: the proxy was asked for %s; want the name localhost for socks5h, an IP address for socks5", tt.scheme, a[0])
			}
		})
	}

	// TLS runs end to end through the proxy, its name checked against
	// the server's host, not the proxy's.
	t.Run("wss", func(t *testing.T) {
		ts := tlsSandmuxServer(t)
		_, tport, _ := net.SplitHostPort(ts.Listener.Addr().String())
		p := testutil.StartSOCKSProxy(t, "")
		ccfg := testConfig("wss://example.com:" + tport) // a name the test certificate holds
		ccfg.Proxy, _ = url.Parse(p.URL("socks5h", ""))
		pool := x509.NewCertPool()
		pool.AddCert(ts.Certificate())
		ccfg.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		echoThrough(t, dial(t, ccfg))
		if a := p.Asked(); len(a) != 1 || a[0] != "example.com:"+tport {
			t.Fatalf("the proxy was asked for %q", a)
		}
	})

	// Only the proxy knows the name: socks5h works, socks5 says why not.
	t.Run("name only the proxy resolves", func(t *testing.T) {
		p := testutil.StartSOCKSProxy(t, "")
		cfg := testConfig("ws://box.sandmux.invalid:" + port)
		cfg.Proxy, _ = url.Parse(p.URL("socks5h", ""))
		echoThrough(t, dial(t, cfg))
		cfg.Proxy, _ = url.Parse(p.URL("socks5", ""))
		de, err := dialErr(t, cfg)
		want := cfg.URL + ": SOCKS proxy " + p.URL("socks5", "") + ": cannot resolve box.sandmux.invalid (check the host name, or use socks5h:// so that the proxy resolves it)"
		if err.Error() != want || de.Temporary() {
			t.Fatalf("error text (temporary %v)\n  %s\nwant a lasting\n  %s", de.Temporary(), err, want)
		}
	})
}

// Every way a SOCKS5 proxy says no is one line that says what to do, and
// the proxy's password is never in it.
func TestSOCKSProxyRefusals(t *testing.T) {
	_, srvURL := testutil.SandmuxServer(t, nil)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srvURL, "ws://"))
	serverURL := "ws://box.sandmux.invalid:" + port

	check := func(t *testing.T, proxyURL, wantWhat, wantHint string, temporary bool) {
		t.Helper()
		cfg := testConfig(serverURL)
		cfg.Proxy, _ = url.Parse(proxyURL)
		de, err := dialErr(t, cfg)
		p, _ := url.Parse(proxyURL)
		want := serverURL + ": SOCKS proxy " + client.RedactProxy(p) + wantWhat + " (" + wantHint + ")"
		if err.Error() != want {
			t.Fatalf("error text\n  %s\nwant\n  %s", err, want)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("the password shows: %s", err)
		}
		var pe *client.ProxyError
		if !errors.As(err, &pe) || pe.Hint() != wantHint || de.Temporary() != temporary {
			t.Fatalf("%v: want a ProxyError, temporary %v", err, temporary)
		}
	}

	for code, tt := range map[byte]struct {
		words, hint string
		temporary   bool
	}{
		1: {"general SOCKS server failure", "the proxy could not reach the server: check the URL, and the proxy's log", true},
		2: {"connection not allowed by ruleset", "the proxy does not allow this destination; ask its administrator, or exempt the server's host with NO_PROXY", false},
		3: {"network unreachable", "the proxy cannot reach the server: check the URL's host and port", true},
		4: {"host unreachable", "the proxy cannot reach the server: check the URL's host and port", true},
		5: {"connection refused", "nothing listens there: check the port in the URL and that `sandmux server` runs (it listens on 8081)", true},
		6: {"TTL expired", "the proxy cannot reach the server: check the URL's host and port", true},
		7: {"command not supported", "the proxy does not offer CONNECT; ask its administrator", false},
		8: {"address type not supported", "the proxy does not take host names: use socks5:// so that sandmux resolves the name", false},
		9: {"unknown reply code 9", "the proxy could not reach the server: check the URL, and the proxy's log", true},
	} {
		t.Run(fmt.Sprintf("reply %d", code), func(t *testing.T) {
			p := testutil.StartSOCKSProxy(t, "alice:s3cret")
			p.Refuse(code)
			check(t, p.URL("socks5h", "alice:s3cret"), " refused the connection: "+tt.words, tt.hint, tt.temporary)
		})
	}

	t.Run("hung up on CONNECT", func(t *testing.T) {
		p := testutil.StartSOCKSProxy(t, "")
		p.HangUp()
		check(t, p.URL("socks5h", ""), ": the proxy closed the connection instead of answering CONNECT",
			"as `ssh -D` does when it cannot reach the server: check the URL's host and port", true)
	})
	t.Run("wrong password", func(t *testing.T) {
		p := testutil.StartSOCKSProxy(t, "alice:s3cret")
		check(t, p.URL("socks5h", "alice:wrong"), ": the proxy rejected the user name and password",
			"check the user and password in the proxy URL: socks5h://user:password@proxy:port", false)
		if a := p.Asked(); len(a) != 0 {
			t.Fatalf("asked %q before authenticating", a)
		}
	})
	t.Run("no password given", func(t *testing.T) {
		p := testutil.StartSOCKSProxy(t, "alice:s3cret")
		check(t, p.URL("socks5h", ""), ": the proxy requires a user name and password",
			"give the proxy's user and password in the proxy URL: socks5h://user:password@proxy:port", false)
	})
	t.Run("not a SOCKS5 proxy", func(t *testing.T) {
		hp := testutil.StartConnectProxy(t, "")
		// An HTTP proxy waits for a whole request line: the client's
		// deadline ends the wait, naming the proxy.
		cfg := testConfig(serverURL)
		cfg.DialTimeout = 300 * time.Millisecond
		cfg.Proxy, _ = url.Parse("socks5h" + strings.TrimPrefix(hp.URL(""), "http"))
		de, err := dialErr(t, cfg)
		want := serverURL + ": SOCKS proxy " + cfg.Proxy.String() + ": timed out (check ALL_PROXY, HTTPS_PROXY, HTTP_PROXY and NO_PROXY, and that the proxy runs)"
		if err.Error() != want || !de.Temporary() {
			t.Fatalf("error text\n  %s\nwant\n  %s", err, want)
		}
		// One that answers at once, as a web server does.
		ln := testutil.Serve(t, func(c net.Conn) { _, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\n\r\n") }).Addr
		check(t, "socks5h://"+ln, `: not a SOCKS5 proxy: it answered "HT"`, "check the proxy's port; an HTTP proxy is given as http://", false)
	})
}

// A SOCKS proxy's URL is checked up front like an HTTP one's, and its
// credentials are never shown.
func TestSOCKSProxyConfig(t *testing.T) {
	for raw, ok := range map[string]bool{
		"socks5://127.0.0.1:1080":                                    true,
		"socks5h://alice:s3cret@proxy":                               true,
		"socks4://127.0.0.1:1080":                                    false,
		"https://127.0.0.1:3128":                                     true,
		"ftp://127.0.0.1:3128":                                       false,
		"socks5h://alice:s3cret@proxy:99999":                         false,
		"socks5h://alice:s3cret@proxy:1080/x":                        false,
		"socks5h://alice:" + strings.Repeat("s3cret", 50) + "@proxy": false,
	} {
		p, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig("ws://box.sandmux.invalid:8081")
		cfg.Proxy = p
		err = cfg.Validate()
		if (err == nil) != ok || err != nil && (!errors.Is(err, client.ErrInvalidConfig) || strings.Contains(err.Error(), "s3cret")) {
			t.Fatalf("%s: validate: %v", raw, err)
		}
	}
}

// The client's deadline bounds the whole SOCKS handshake: a proxy that
// accepts the CONNECT's bytes and never answers is given up on in time.
func TestSOCKSProxyDeadline(t *testing.T) {
	proxy := testutil.Serve(t, func(c net.Conn) {
		// Agrees to no authentication, then says nothing more.
		_, _ = c.Write([]byte{5, 0})
		_, _ = io.Copy(io.Discard, c)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	cfg := testConfig("ws://box.sandmux.invalid:8081")
	cfg.Proxy, _ = url.Parse("socks5h://" + proxy.Addr)
	t0 := time.Now()
	_, err := client.DialTCP(ctx, cfg, "box.sandmux.invalid:8081")
	var pe *client.ProxyError
	if !errors.As(err, &pe) || !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) > 5*time.Second {
		t.Fatalf("DialTCP through a silent SOCKS proxy: %v after %v", err, time.Since(t0))
	}
}
