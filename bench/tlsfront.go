//go:build linux

package main

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/sandmux/sandmux/internal/testutil"
)

// tlsFront terminates TLS for a plain-ws sandmux server, as E2B's edge does
// for a sandbox port published as wss://PORT-ID.e2b.app: every new
// WebSocket then pays TLS's handshake round trip, as it does in real use.
// Its certificate, for 127.0.0.1, is its own CA; caFile holds its PEM for
// `sandmux proxy --ca`.
type tlsFront struct {
	srv    *testutil.Server
	caFile string
}

// startTLSFront listens on a free loopback port and forwards each
// connection, decrypted, to upstream. The CA's PEM is written into dir.
func startTLSFront(dir, upstream string) (*tlsFront, error) {
	cert, caPEM, err := testutil.SelfSigned("sandmux bench TLS front")
	if err != nil {
		return nil, err
	}
	caFile := filepath.Join(dir, "front-ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		return nil, err
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	srv := testutil.ServeListener(ln, func(c net.Conn) { forward(c, upstream) })
	return &tlsFront{srv: srv, caFile: caFile}, nil
}

// Addr is where clients connect.
func (f *tlsFront) Addr() string { return f.srv.Addr }

// Close stops the front and waits for every forwarded connection to end.
func (f *tlsFront) Close() error {
	f.srv.Close()
	return nil
}

// forward copies c to and from a new connection to upstream. A clean end
// of one direction is passed on as a half-close; an error (c closed by
// Close) ends both.
func forward(c net.Conn, upstream string) {
	up, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer up.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		if _, err := io.Copy(up, c); err != nil && !errors.Is(err, io.EOF) {
			_ = up.Close()
			return
		}
		_ = up.(*net.TCPConn).CloseWrite()
	})
	_, _ = io.Copy(c, up)
	_ = c.(*tls.Conn).CloseWrite()
}
