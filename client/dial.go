package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sandmux/sandmux/mux"
)

// Dial opens the WebSocket described by cfg and starts a session on it.
// ctx bounds only the dial; the session lives until Close. It dials once:
// a caller that retries (the agent) sees every refusal.
func Dial(ctx context.Context, cfg Config) (*Session, error) {
	return dial(ctx, cfg, false)
}

// dial is Dial; oneStream (DialStream) dials again while the server says
// it is busy, and once after a connection dropped unanswered
// (dialOneStream).
func dial(ctx context.Context, cfg Config, oneStream bool) (*Session, error) {
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
	// The session's lifetime is its own, never the dial context's.
	lctx, lcancel := context.WithCancel(context.Background())
	s := &Session{url: cfg.URL, cfg: cfg, log: log, ctx: lctx, cancel: lcancel}
	var protos []string
	switch {
	case cfg.Raw:
	case cfg.NoResume:
		protos = []string{mux.Subprotocol}
	default:
		protos = []string{mux.SubprotocolResumable, mux.Subprotocol}
	}
	var link mux.Link
	var err error
	if oneStream {
		link, err = s.dialOneStream(dctx, protos)
	} else {
		link, err = s.dialWS(dctx, protos, false)
	}
	if err != nil {
		lcancel()
		return nil, err
	}
	ws := link.WS
	switch ws.Subprotocol() {
	case mux.SubprotocolResumable:
		if err := s.startResumable(dctx, link); err != nil {
			lcancel()
			return nil, err
		}
		log.Debug("resumable session up", "handshake", time.Since(start).Round(time.Millisecond))
		return s, nil
	case mux.Subprotocol:
		s.mux, err = mux.Client(link.NetConn(lctx), cfg.Mux, log)
		if err != nil {
			lcancel()
			return nil, err
		}
		log.Debug("session up", "handshake", time.Since(start).Round(time.Millisecond))
		return s, nil
	}
	log.Debug("server picked no sandmux subprotocol; raw mode")
	s.raw = mux.RawNetConn(lctx, ws)
	return s, nil
}

// startResumable says hello for a new session and starts yamux on the
// resumable transport, with the loop that resumes it. It does not wait
// for the server's WELCOME (spec §9.2): the session's first stream is
// under way a round trip sooner, and the WELCOME, the first message the
// transport reads, brings the credentials a resume needs.
func (s *Session) startResumable(ctx context.Context, link mux.Link) error {
	ws := link.WS
	if err := mux.SendHello(ctx, ws, mux.Hello{}); err != nil {
		_ = ws.CloseNow()
		return &DialError{URL: RedactURL(s.cfg.URL), Err: err}
	}
	rcfg := s.cfg.Resume
	rcfg.Logger = s.log
	rc, err := mux.NewResumable(rcfg)
	if err != nil {
		_ = ws.CloseNow()
		return err
	}
	rc.AwaitWelcome(func(w mux.Welcome) error {
		if w.Status != mux.WelcomeNew {
			return fmt.Errorf("%w: server answered a new session with status %d", mux.ErrResumeProtocol, w.Status)
		}
		s.idMu.Lock()
		s.id, s.secret, s.grace = w.ID, w.Secret, w.Grace
		s.idMu.Unlock()
		// server_session is what the server's log calls it (session=),
		// so that the two logs can be matched.
		s.log.Info("the server accepted the session", "server_session", fmt.Sprintf("%x", w.ID[:4]), "grace", w.Grace)
		return nil
	})
	if _, err := rc.Attach(link, 0, nil); err != nil {
		_ = rc.Close()
		return err
	}
	s.mux, err = mux.Client(rc, s.cfg.Mux, s.log)
	if err != nil {
		_ = rc.Close()
		return err
	}
	s.wg.Add(1)
	go s.resumeLoop()
	return nil
}

// httpClient speaks HTTP/1.1 only: a WebSocket upgrade cannot ride HTTP/2.
// Proxies are not taken from the environment here; libraries read no
// environment. It serves one handshake, to the server of cfg (its TLS
// and proxy); the handshakeConn it returns reports what it dialed.
func httpClient(cfg Config) (*http.Client, *handshakeConn) {
	tc := cfg.TLS
	if tc == nil {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		tc = tc.Clone()
	}
	tc.NextProtos = []string{"http/1.1"}
	hs := &handshakeConn{}
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	dial := d.DialContext
	if cfg.Proxy != nil {
		dial = func(ctx context.Context, _, addr string) (net.Conn, error) {
			c, err := dialVia(ctx, d, cfg.Proxy, cfg.ProxyTLS, addr)
			if err == nil {
				hs.tunnelOpen()
			}
			return c, err
		}
	}
	return &http.Client{
		// A redirect is reported, never followed: following it would send
		// the token and --header values (e2b-traffic-access-token) to
		// wherever it points, in clear text on an https-to-http one.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return hs.keep(c), nil
			},
			// TLS is done here rather than by the transport so that the
			// BufConn sits above it, where the bytes are WebSocket frames.
			DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				raw, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				cfg := tc.Clone()
				if cfg.ServerName == "" {
					cfg.ServerName, _, _ = net.SplitHostPort(addr)
				}
				tconn := tls.Client(raw, cfg)
				hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				defer cancel()
				if err := tconn.HandshakeContext(hctx); err != nil {
					_ = raw.Close()
					return nil, err
				}
				mux.TuneTCP(raw)
				return hs.keep(tconn), nil
			},
			ForceAttemptHTTP2: false,
		}}, hs
}

// handshakeConn is what httpClient's one handshake dialed.
type handshakeConn struct {
	mu     sync.Mutex
	last   *mux.BufConn
	tunnel bool
}

// keep wraps c, the connection to the server (above TLS), in the
// mux.BufConn that conn reports, so the caller can switch it to framing
// once the upgrade is done.
func (h *handshakeConn) keep(c net.Conn) net.Conn {
	bc := mux.WrapConn(c)
	h.mu.Lock()
	h.last = bc
	h.mu.Unlock()
	return bc
}

func (h *handshakeConn) tunnelOpen() {
	h.mu.Lock()
	h.tunnel = true
	h.mu.Unlock()
}

// conn is the connection kept, or nil before one is made.
func (h *handshakeConn) conn() *mux.BufConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// tunneled reports whether a proxy opened its tunnel to the server: what
// failed after that (the server's TLS, its answer) is the server's.
func (h *handshakeConn) tunneled() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tunnel
}

// maxBusyWait caps the wait a busy server's Retry-After asks for.
const maxBusyWait = 5 * time.Second

// droppedRetryWait is the least wait before the one redial of a
// connection dropped before any answer; up to half as much again, spread out.
const droppedRetryWait = 200 * time.Millisecond

// dialOneStream opens DialStream's WebSocket, again and again while the
// server answers that it is busy and says when to come back (503 or 429 with
// Retry-After: a sandmux server at its --max-handshakes), for as long as
// ctx allows: such a refusal is a moment's, not the user's to deal with,
// and a --no-agent proxy, which dials once, failed on it. A connection
// closed or reset before any answer (a server past twice its
// --max-handshakes closes the rest unread; an edge or middlebox dropping
// a connection) is dialled once more: nothing of the session was sent
// on it, and a --no-agent ssh failed on each such blip (the chaos run
// saw 7-12 a run). A refused connection is not: nothing listens there.
// Given up, the error is the last one, whose text says what happened,
// except that a dial again cut short by ctx gives the refusal it
// retried: "server busy", not a timeout that hides why. Only a dial for
// one stream (DialStream) does this: the agent retries with its own
// backoff, and tells the proxies waiting why the last dial failed.
func (s *Session) dialOneStream(ctx context.Context, protos []string) (mux.Link, error) {
	redialled := false
	var refused error // the refusal being retried
	for {
		link, err := s.dialWS(ctx, protos, false)
		if err != nil && refused != nil && ctx.Err() != nil {
			return link, refused
		}
		var de *DialError
		if err == nil || !errors.As(err, &de) {
			return link, err
		}
		var wait time.Duration
		switch {
		case de.RetryAfter > 0:
			wait = min(de.RetryAfter, maxBusyWait)
		case !redialled && de.droppedUnanswered():
			redialled, wait = true, droppedRetryWait
		default:
			return link, err
		}
		refused = err
		// Spread out, so that the clients a burst refused together do
		// not come back together.
		wait += rand.N(wait / 2)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return link, err
		}
		s.log.Debug("dial refused or dropped; dialling again", "in", wait.Round(time.Millisecond), "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return link, err
		}
	}
}

// retryAfter is a busy answer's Retry-After in seconds (the form sandmux
// and most servers send; a date is taken for none), or zero.
func retryAfter(resp *http.Response) time.Duration {
	if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusTooManyRequests {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After")))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(min(n, 3600)) * time.Second
}

// dialError turns a failed handshake into a DialError carrying the HTTP
// status and the server's first line of explanation.
func dialError(url string, resp *http.Response, err error) error {
	de := &DialError{URL: RedactURL(url), Err: err}
	if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		de.StatusCode = resp.StatusCode
		de.RetryAfter = retryAfter(resp)
		if loc := resp.Header.Get("Location"); isRedirect(resp.StatusCode) && loc != "" {
			de.Detail = "redirects to " + RedactURL(loc) + "; sandmux does not follow redirects, which would carry the token there: put that address in --url if you trust it"
			if resp.Body != nil {
				_ = resp.Body.Close()
			}
		} else if resp.Body != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, maxEdgeBody))
			if tlsPortAnswer(resp, body) {
				// Not the server's refusal of the upgrade: it never
				// saw one, and says so in HTTP.
				_ = resp.Body.Close()
				return &DialError{URL: de.URL, Err: tlsPortError{err}}
			}
			line, _, _ := strings.Cut(string(body), "\n")
			// Control characters dropped: the line reaches the user's
			// terminal, and whatever answers the URL wrote it.
			de.Detail = strings.TrimSpace(Printable(line))
			if !strings.HasPrefix(de.Detail, "sandmux: ") || resp.StatusCode == http.StatusUnauthorized {
				de.Detail = "" // only our own server's words, and only where the hint does not already say it
			}
			de.Detail = strings.TrimPrefix(de.Detail, "sandmux: ")
			if de.Detail == "" {
				de.Edge = edgeMessage(body)
			}
			_ = resp.Body.Close()
		}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return de
}
