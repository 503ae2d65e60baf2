package testutil

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
)

// ConnectProxy is an HTTP CONNECT proxy on loopback that carries every
// tunnel to 127.0.0.1 on the port asked for, whatever the host (so that
// a test can name a server by a host that resolves nowhere), and
// records what it was asked. With auth set it wants that Basic
// user:password first. Started by StartTLSConnectProxy, it is an
// https:// proxy, spoken to over TLS.
type ConnectProxy struct {
	srv   *Server
	auth  string
	caPEM []byte // the TLS proxy's certificate, its own CA
	askLog
}

// StartConnectProxy runs a ConnectProxy until the test ends.
func StartConnectProxy(t testing.TB, auth string) *ConnectProxy {
	t.Helper()
	p := &ConnectProxy{auth: auth}
	p.srv = Serve(t, p.serve)
	return p
}

// StartTLSConnectProxy runs a ConnectProxy behind TLS, with a
// certificate for 127.0.0.1 that is its own CA (CAPEM), until the test
// ends.
func StartTLSConnectProxy(t testing.TB, auth string) *ConnectProxy {
	t.Helper()
	cert, caPEM, err := SelfSigned("sandmux test HTTPS proxy")
	if err != nil {
		t.Fatalf("testutil: proxy certificate: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testutil: listen on loopback: %v", err)
	}
	p := &ConnectProxy{auth: auth, caPEM: caPEM}
	p.srv = ServeListener(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), p.serve)
	t.Cleanup(p.srv.Close)
	return p
}

// CAPEM is the PEM of the TLS proxy's certificate, which a client must
// trust; nil for a plain one.
func (p *ConnectProxy) CAPEM() []byte { return p.caPEM }

// URL is the proxy's http:// URL (https:// behind TLS), with userinfo
// ("user:password") if given.
func (p *ConnectProxy) URL(userinfo string) string {
	if userinfo != "" {
		userinfo += "@"
	}
	scheme := "http://"
	if p.caPEM != nil {
		scheme = "https://"
	}
	return scheme + userinfo + p.srv.Addr
}

func (p *ConnectProxy) serve(c net.Conn) {
	defer c.Close()
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		// As squid and tinyproxy answer what is not HTTP (a TLS
		// ClientHello, from a client told https:// for this plain proxy).
		_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return
	}
	if req.Method != http.MethodConnect {
		return
	}
	p.record(req.Host)
	if p.auth != "" && req.Header.Get("Proxy-Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte(p.auth)) {
		_, _ = io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
		return
	}
	_, port, _ := net.SplitHostPort(req.Host)
	up, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	defer up.Close()
	_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(up, c)
		_ = up.(*net.TCPConn).CloseWrite()
	}()
	_, _ = io.Copy(c, up)
	_ = c.Close()
	<-done
}

// askLog records what a test proxy was asked to connect to.
type askLog struct {
	mu      sync.Mutex
	targets []string
}

func (a *askLog) record(hostport string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.targets = append(a.targets, hostport)
}

// Asked lists the host:port of every tunnel or CONNECT asked for.
func (a *askLog) Asked() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.targets...)
}
