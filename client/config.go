package client

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sandmux/sandmux/mux"
)

// Config configures dialing one server.
type Config struct {
	// URL is the ws:// or wss:// URL to dial (already expanded; see
	// ExpandURL).
	URL string
	// Header holds extra handshake headers, e.g. e2b-traffic-access-token.
	Header http.Header
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// TLS configures wss:// connections; nil uses the system roots.
	TLS *tls.Config
	// DialTimeout bounds TCP, TLS and the WebSocket handshake together.
	DialTimeout time.Duration
	// Mux tunes the yamux session.
	Mux mux.Config
	// Raw offers no subprotocol, so the server runs raw mode: one
	// WebSocket per connection, as websocat does. For comparison and for
	// servers that must not see the sandmux protocol.
	Raw bool
	// NoResume offers only sandmux.v1, whose session ends with its
	// WebSocket. By default sandmux.v2 is offered first: a lost WebSocket
	// is then redialed and the session resumed, streams intact.
	NoResume bool
	// Resume tunes the resumable transport. Its Grace is how long this side
	// keeps trying to resume (the server keeps its side for its own
	// --resume-grace; a frozen server may come back after that).
	Resume mux.ResumeConfig
	// Backoff spaces resume attempts.
	Backoff Backoff
	// Proxy, if set, is the proxy through which to reach URL: an http://
	// or https:// one, which the client asks to CONNECT to the server, or a
	// socks5:// (the client resolves the server's name) or socks5h://
	// (the proxy does) one (HTTPS_PROXY or ALL_PROXY, as the command
	// resolves it for URL).
	Proxy *url.URL
	// ProxyTLS configures TLS to an https:// Proxy; nil checks the
	// proxy's certificate against the system's roots.
	ProxyTLS *tls.Config
	// ForeignAnswers is how long a resume keeps trying while every
	// attempt meets an answer a first dial would take as final (404, a
	// plain page, a redirect, a certificate or name that does not check
	// out): a network being switched, or a captive portal, answers so for
	// a while; a sandbox that is gone answers so for good. 0 ends the
	// session at the first such answer.
	ForeignAnswers time.Duration
	// Logger receives logs; nil discards them. Its lines do not name the
	// server: give the logger a "url" attribute where that matters.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with the tuned mux settings and a 15 s
// dial timeout; URL must still be set.
func DefaultConfig() Config {
	return Config{
		DialTimeout: 15 * time.Second,
		Mux:         mux.DefaultConfig(),
		Resume:      mux.DefaultResumeConfig(),
		Backoff:     DefaultBackoff(),
		// Long enough for a network switch and a portal's page; short
		// against the 10 min a session otherwise waits to resume.
		ForeignAnswers: time.Minute,
	}
}

// Validate reports the first unusable value.
func (c Config) Validate() error {
	if err := checkURL(c.URL); err != nil {
		return err
	}
	if c.DialTimeout <= 0 {
		return fmt.Errorf("%w: dial timeout must be positive", ErrInvalidConfig)
	}
	if err := c.Backoff.Check(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := checkProxy(c.Proxy); err != nil {
		return err
	}
	if c.ForeignAnswers < 0 {
		return fmt.Errorf("%w: foreign answers limit must not be negative", ErrInvalidConfig)
	}
	// A token or header value with a line end in it (read from a file
	// with CRLF endings, pasted with a tab) fails every handshake; the
	// dial error would be retried as an outage until --connect-timeout
	// and then blame the URL and the network.
	if i := strings.IndexFunc(c.Token, isControl); i >= 0 {
		return fmt.Errorf("%w: the token has a control character at byte %d (a line end or tab copied with it?): give the token alone", ErrInvalidConfig, i+1)
	}
	for name, values := range c.Header {
		if strings.EqualFold(name, "Authorization") && c.Token != "" {
			return fmt.Errorf("%w: both --token and an Authorization header are set; use one", ErrInvalidConfig)
		}
		for _, v := range values {
			if i := strings.IndexFunc(v, isControl); i >= 0 && v[i] != '\t' {
				return fmt.Errorf("%w: the value of header %s has a control character at byte %d (a line end copied with it?)", ErrInvalidConfig, name, i+1)
			}
		}
	}
	return c.Mux.Validate()
}

// isControl reports the characters no HTTP header value may hold (RFC
// 9110 5.5; a tab is allowed inside a header value, not in a token).
func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// handshakeHeader is the header sent with the upgrade request.
func (c Config) handshakeHeader() http.Header {
	h := c.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if c.Token != "" {
		h.Set("Authorization", "Bearer "+c.Token)
	}
	return h
}
