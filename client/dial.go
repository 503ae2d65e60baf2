package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/mux"
)

// Dial opens the WebSocket described by cfg and starts a session on it.
// ctx bounds only the dial; the session lives until Close.
func Dial(ctx context.Context, cfg Config) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = mux.DiscardLogger()
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	start := time.Now()
	opts := &websocket.DialOptions{
		HTTPClient:      httpClient(cfg.TLS),
		HTTPHeader:      cfg.handshakeHeader(),
		CompressionMode: websocket.CompressionDisabled,
	}
	if !cfg.Raw {
		opts.Subprotocols = []string{mux.Subprotocol}
	}
	ws, resp, err := websocket.Dial(dctx, cfg.URL, opts)
	if err != nil {
		return nil, dialError(cfg.URL, resp, err)
	}
	// The session's lifetime is its own, never the dial context's.
	lctx, lcancel := context.WithCancel(context.Background())
	s := &Session{url: cfg.URL, cancel: lcancel}
	if ws.Subprotocol() != mux.Subprotocol {
		log.Debug("server picked no sandmux subprotocol; raw mode", "url", RedactURL(cfg.URL))
		s.raw = websocket.NetConn(lctx, ws, websocket.MessageBinary)
		return s, nil
	}
	s.mux, err = mux.Client(mux.NetConn(lctx, ws), cfg.Mux, log)
	if err != nil {
		lcancel()
		return nil, err
	}
	log.Debug("session up", "url", RedactURL(cfg.URL), "handshake", time.Since(start).Round(time.Millisecond))
	return s, nil
}

// httpClient speaks HTTP/1.1 only: a WebSocket upgrade cannot ride HTTP/2.
// Proxies are not taken from the environment here; libraries read no
// environment.
func httpClient(tc *tls.Config) *http.Client {
	if tc == nil {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		tc = tc.Clone()
	}
	tc.NextProtos = []string{"http/1.1"}
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: 15 * time.Second,
		ForceAttemptHTTP2:   false,
	}}
}

// dialError turns a failed handshake into a DialError carrying the HTTP
// status and the server's first line of explanation.
func dialError(url string, resp *http.Response, err error) error {
	de := &DialError{URL: RedactURL(url), Err: err}
	if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		de.StatusCode = resp.StatusCode
		if resp.Body != nil {
			line, _ := bufio.NewReader(io.LimitReader(resp.Body, 512)).ReadString('\n')
			de.Detail = strings.TrimSpace(line)
			if !strings.HasPrefix(de.Detail, "sandmux: ") || resp.StatusCode == http.StatusUnauthorized {
				de.Detail = "" // only our own server's words, and only where the hint does not already say it
			}
			de.Detail = strings.TrimPrefix(de.Detail, "sandmux: ")
			_ = resp.Body.Close()
		}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return de
}
