package client

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
)

// isHTTPProxy reports whether scheme names a proxy the client asks to
// CONNECT: http://, or https://, spoken to over TLS (as curl and Go's
// net/http do for such a proxy).
func isHTTPProxy(scheme string) bool { return scheme == "http" || scheme == "https" }

// startProxyTLS secures c, a connection to the https:// proxy p, before
// the CONNECT: the request, the proxy's credentials and then the
// server's own bytes (TLS again for wss://) ride inside. The proxy's
// certificate is checked for p's host name against base's roots (nil:
// the system's). c is closed on failure.
func startProxyTLS(ctx context.Context, c net.Conn, p *url.URL, base *tls.Config) (net.Conn, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		cfg = base.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = p.Hostname()
	}
	// CONNECT is an HTTP/1.1 request here; a proxy that picked h2 would
	// expect it framed.
	cfg.NextProtos = []string{"http/1.1"}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return tc, nil
}

// proxyTLSHint says what to do when the HTTP proxy proxy (its redacted
// URL) gave no answer: its TLS failed (https://), or it could not be
// reached.
func proxyTLSHint(err error, proxy string) string {
	var rh tls.RecordHeaderError
	switch {
	case isTLSTrustError(err):
		return "the proxy's certificate is not trusted here: add its CA to the system's trust store or name it in SSL_CERT_FILE, or check HTTPS_PROXY"
	case errors.As(err, &rh):
		// The usual slip: HTTPS_PROXY=https://proxy:3128 for a plain
		// proxy, whose variable's name, not its scheme, says https.
		// Which variable held it is the caller's to know; the URL to
		// write is shown whole, without its credentials.
		return "the proxy does not speak TLS: write its URL with http://, as " + plainProxyURL(proxy)
	}
	return "check HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY"
}

// plainProxyURL is proxy, a redacted https:// proxy URL, as http://
// HOST:PORT: the port it was dialled on (443 if it named none) stays, and
// credentials, redacted, show as where to put them.
func plainProxyURL(proxy string) string {
	u, err := url.Parse(proxy)
	if err != nil || u.Host == "" {
		return "http://proxy:port"
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	user := ""
	if u.User != nil {
		user = "USER:PASSWORD@"
	}
	return "http://" + user + net.JoinHostPort(u.Hostname(), port)
}

// proxyTLSLasting reports whether err, an HTTP proxy's failure before any
// answer, will meet every dial alike: its certificate, or no TLS at all.
func proxyTLSLasting(err error) bool {
	var rh tls.RecordHeaderError
	return isTLSTrustError(err) || errors.As(err, &rh)
}
