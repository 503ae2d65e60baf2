package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// checkProxy reports whether p can carry the client's connection: an
// http:// or https:// proxy, which the client asks to CONNECT to the
// server, or a socks5:// or socks5h:// one.
func checkProxy(p *url.URL) error {
	if p == nil {
		return nil
	}
	if (!isHTTPProxy(p.Scheme) && !isSOCKS(p.Scheme)) || p.Hostname() == "" {
		return fmt.Errorf("%w: proxy %s (HTTPS_PROXY, HTTP_PROXY or ALL_PROXY): only http:// and https:// (HTTP CONNECT), socks5:// and socks5h:// proxies are supported; to connect directly, name the server's host in NO_PROXY", ErrInvalidConfig, RedactProxy(p))
	}
	// What net/http's environment reading makes of a malformed value
	// ("http://user:pw@proxy:3128x" is retried as "http://" + value, so the
	// host becomes "http" and the credentials land in the path).
	if p.Opaque != "" || (p.Path != "" && p.Path != "/") || p.RawQuery != "" || p.Fragment != "" {
		return fmt.Errorf("%w: proxy %s: not a proxy address (%s://[user:password@]host:port)", ErrInvalidConfig, RedactProxy(p), p.Scheme)
	}
	if port := p.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%w: proxy %s: bad port", ErrInvalidConfig, RedactProxy(p))
		}
	}
	if u := p.User; u != nil && isSOCKS(p.Scheme) {
		// RFC 1929 gives each a length byte.
		if pw, _ := u.Password(); len(u.Username()) > 255 || len(pw) > 255 {
			return fmt.Errorf("%w: proxy %s: a SOCKS5 proxy's user name and password are at most 255 bytes each", ErrInvalidConfig, RedactProxy(p))
		}
	}
	return nil
}

// RedactProxy names the proxy p for messages: scheme, host and port only,
// its credentials as xxxxx, and never its path, where a malformed value
// may have put them.
func RedactProxy(p *url.URL) string {
	if p == nil {
		return ""
	}
	r := url.URL{Scheme: p.Scheme, Host: p.Host}
	if p.User != nil {
		r.User = url.User("xxxxx")
	}
	return r.String()
}

// dialVia connects to addr through the proxy p: a SOCKS5 one, or an HTTP
// one (an HTTP CONNECT tunnel, RFC 9110 §9.3.6), as curl and git do for
// HTTPS_PROXY, spoken over TLS to an https:// proxy, whose certificate is
// checked against ptls (nil: the system's roots). What follows on the
// connection (TLS, the upgrade) is the server's, end to end. A refusal is
// a *ProxyError.
func dialVia(ctx context.Context, d *net.Dialer, p *url.URL, ptls *tls.Config, addr string) (net.Conn, error) {
	if isSOCKS(p.Scheme) {
		return dialSOCKS(ctx, d, p, addr)
	}
	paddr := p.Host
	if p.Port() == "" {
		paddr = net.JoinHostPort(p.Hostname(), map[string]string{"http": "80", "https": "443"}[p.Scheme])
	}
	c, err := d.DialContext(ctx, "tcp", paddr)
	if err == nil && p.Scheme == "https" {
		c, err = startProxyTLS(ctx, c, p, ptls)
	}
	if err != nil {
		return nil, &ProxyError{Proxy: RedactProxy(p), Err: err}
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: addr}, Host: addr, Header: http.Header{}}
	if u := p.User; u != nil {
		pw, _ := u.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)))
	}
	br := bufio.NewReader(c)
	var resp *http.Response
	if err = req.Write(c); err == nil {
		resp, err = http.ReadResponse(br, req)
	}
	if err != nil {
		_ = c.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, &ProxyError{Proxy: RedactProxy(p), Err: err}
	}
	// Any 2xx opens the tunnel (RFC 9110 §9.3.6), and its Content-Length
	// or Transfer-Encoding, which a proxy must not send, is ignored: the
	// body is not read (closing it could consume tunnel bytes).
	if resp.StatusCode/100 != 2 {
		_ = c.Close()
		return nil, &ProxyError{Proxy: RedactProxy(p), StatusCode: resp.StatusCode, Status: Printable(resp.Status)}
	}
	if !stop() {
		_ = c.Close()
		return nil, &ProxyError{Proxy: RedactProxy(p), Err: ctx.Err()}
	}
	if br.Buffered() > 0 {
		// Bytes of the tunnel read with the answer: served first.
		return &bufferedConn{Conn: c, r: br}, nil
	}
	return c, nil
}

// ProxyError is a failure to open a tunnel through the proxy (HTTP or
// SOCKS5).
type ProxyError struct {
	Proxy      string // redacted
	StatusCode int    // the HTTP proxy's answer to CONNECT; 0 if none
	Status     string
	// Reply is the SOCKS5 proxy's refusal code (RFC 1928 §6); 0 if none.
	Reply byte
	Err   error // when there was no answer
}

func (e *ProxyError) Error() string { return e.what() + " (" + e.Hint() + ")" }

// what says what failed, without the hint.
func (e *ProxyError) what() string {
	if e.socks() {
		if e.Reply != 0 {
			return fmt.Sprintf("SOCKS proxy %s refused the connection: %s", e.Proxy, socksReplyText(e.Reply))
		}
		return fmt.Sprintf("SOCKS proxy %s: %s", e.Proxy, describe(e.Err))
	}
	if e.StatusCode != 0 {
		return fmt.Sprintf("HTTP proxy %s refused the tunnel: %s", e.Proxy, e.Status)
	}
	return fmt.Sprintf("HTTP proxy %s: %s", e.Proxy, describe(e.Err))
}

// Unwrap exposes the cause.
func (e *ProxyError) Unwrap() error { return e.Err }

// socks reports whether the proxy is a SOCKS5 one, by its redacted
// URL's scheme (which every ProxyError's maker sets).
func (e *ProxyError) socks() bool {
	return strings.HasPrefix(e.Proxy, "socks5://") || strings.HasPrefix(e.Proxy, "socks5h://")
}

// temporary reports whether asking the proxy again may help.
func (e *ProxyError) temporary() bool {
	if e.socks() {
		return socksTemporary(e.Reply, e.Err)
	}
	if e.StatusCode == 0 && proxyTLSLasting(e.Err) {
		return false
	}
	switch e.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests:
		return true
	}
	// Any other 4xx (401 is what tinyproxy answers a wrong password
	// with) is the proxy's decision, not a passing failure.
	return e.StatusCode/100 != 4
}

// Hint says what to do about the failure.
func (e *ProxyError) Hint() string {
	if e.socks() {
		return socksHint(e.Reply, e.Err, e.Proxy[:strings.Index(e.Proxy, ":")])
	}
	if e.StatusCode == 0 {
		return proxyTLSHint(e.Err, e.Proxy)
	}
	scheme, _, ok := strings.Cut(e.Proxy, "://")
	if !ok {
		scheme = "http"
	}
	return proxyHint(e.StatusCode, scheme)
}

// proxyHint says what to do about an HTTP proxy's refusal code; scheme
// (http or https) is the proxy's, kept in the URL the hint shows.
func proxyHint(code int, scheme string) string {
	switch code {
	case http.StatusProxyAuthRequired, http.StatusUnauthorized:
		return "give the proxy's user and password in the proxy URL: " + scheme + "://user:password@proxy:port"
	case http.StatusForbidden, http.StatusMethodNotAllowed:
		return "the proxy does not allow this destination; ask its administrator, or exempt it with NO_PROXY"
	}
	return "the proxy could not reach the server"
}

// bufferedConn reads what its reader holds before the connection.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// DialTCP connects to addr as the client's dial does: directly, or
// through cfg.Proxy (a *ProxyError if it is refused).
func DialTCP(ctx context.Context, cfg Config, addr string) (net.Conn, error) {
	d := &net.Dialer{}
	if cfg.Proxy != nil {
		return dialVia(ctx, d, cfg.Proxy, cfg.ProxyTLS, addr)
	}
	return d.DialContext(ctx, "tcp", addr)
}
