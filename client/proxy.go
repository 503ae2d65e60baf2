package client

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// checkProxy reports whether p can carry the client's connection: an
// http:// proxy, which the client asks to CONNECT to the server.
func checkProxy(p *url.URL) error {
	if p == nil {
		return nil
	}
	if p.Scheme != "http" || p.Hostname() == "" {
		return fmt.Errorf("%w: proxy %s: only http:// proxies (HTTP CONNECT) are supported", ErrInvalidConfig, RedactURL(p.String()))
	}
	return nil
}

// dialVia connects to addr through the HTTP proxy p (an HTTP CONNECT
// tunnel, RFC 9110 §9.3.6), as curl and git do for HTTPS_PROXY. What
// follows on the connection (TLS, the upgrade) is the server's, end to
// end. A refusal is a *ProxyError.
func dialVia(ctx context.Context, d *net.Dialer, p *url.URL, addr string) (net.Conn, error) {
	paddr := p.Host
	if p.Port() == "" {
		paddr = net.JoinHostPort(p.Hostname(), "80")
	}
	c, err := d.DialContext(ctx, "tcp", paddr)
	if err != nil {
		return nil, &ProxyError{Proxy: RedactURL(p.String()), Err: err}
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
		return nil, &ProxyError{Proxy: RedactURL(p.String()), Err: err}
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_ = c.Close()
		return nil, &ProxyError{Proxy: RedactURL(p.String()), StatusCode: resp.StatusCode, Status: resp.Status}
	}
	if !stop() {
		_ = c.Close()
		return nil, &ProxyError{Proxy: RedactURL(p.String()), Err: ctx.Err()}
	}
	if br.Buffered() > 0 {
		// Bytes of the tunnel read with the answer: served first.
		return &bufferedConn{Conn: c, r: br}, nil
	}
	return c, nil
}

// ProxyError is a failure to open a tunnel through the HTTP proxy.
type ProxyError struct {
	Proxy      string // redacted
	StatusCode int    // the proxy's answer to CONNECT; 0 if none
	Status     string
	Err        error // when there was no answer
}

func (e *ProxyError) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("HTTP proxy %s refused the tunnel: %s (%s)", e.Proxy, e.Status, proxyHint(e.StatusCode))
	}
	return fmt.Sprintf("HTTP proxy %s: %v (check HTTPS_PROXY, HTTP_PROXY and NO_PROXY)", e.Proxy, e.Err)
}

// Unwrap exposes the cause.
func (e *ProxyError) Unwrap() error { return e.Err }

// temporary reports whether asking the proxy again may help.
func (e *ProxyError) temporary() bool {
	switch e.StatusCode {
	case http.StatusProxyAuthRequired, http.StatusForbidden, http.StatusMethodNotAllowed:
		return false
	}
	return true
}

func proxyHint(code int) string {
	switch code {
	case http.StatusProxyAuthRequired:
		return "give the proxy's user and password in the proxy URL: http://user:password@proxy:port"
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
// through cfg.Proxy's CONNECT tunnel (a *ProxyError if it is refused).
func DialTCP(ctx context.Context, cfg Config, addr string) (net.Conn, error) {
	d := &net.Dialer{}
	if cfg.Proxy != nil {
		return dialVia(ctx, d, cfg.Proxy, addr)
	}
	return d.DialContext(ctx, "tcp", addr)
}
