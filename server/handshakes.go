package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sandmux/sandmux/mux"
)

// The handshake limit (Config.MaxHandshakes) bounds the connections that
// have not yet become a session: from the TCP accept through the HTTP
// request, the token check, the upgrade and the sandmux.v2 hello. Anyone
// who can reach the sandbox's public port can open such connections, and
// each holds a goroutine and buffers for up to --header-timeout; the
// limit plays the part of sshd's MaxStartups. Streams on an established
// session are not connections and never count.
//
// A connection whose request has not yet reached the handler (one that
// has sent nothing, or half a header, or waits idle between keep-alive
// requests) makes way: a newcomer at the limit closes the oldest such
// connection instead of being refused. Without that, 64 connections
// that sent a GET /healthz every few seconds, or trickled their headers,
// held every place with no token and almost no traffic, and every
// client, resumes included, got 503 for as long as they liked. A real
// client's request follows its connection within a round trip (at once
// behind E2B's edge, which has the request before it connects), so only
// a flood of new connections faster than that can push one out.
//
// Beyond the limit of connections being answered (from their request
// read to their answer sent) or upgraded, as many connections again are
// answered 503 with Retry-After as soon as their request arrives (within
// busyAnswerLimit), so that a client that was merely unlucky is told to
// retry; past those too, a connection is closed unread. The limit is kept by the
// http.Server's ConnContext and ConnState hooks (Server.ConnContext,
// Server.ConnState), which see every connection without wrapping it: the
// data path keeps its *net.TCPConn.

// busyAnswerLimit bounds how long a connection refused for the handshake
// limit may take to send the request it is to be answered 503 on.
const busyAnswerLimit = time.Second

// busyReportEvery is how often refusals are logged while they go on: the
// first of a burst at once, then one line with their count at most this
// often, so that a flood of connections does not flood the log too.
const busyReportEvery = time.Minute

// hsConn is a connection the handshake limit keeps track of.
type hsConn struct {
	// busy: over the limit, to be answered 503 (or closed by timer).
	busy  bool
	timer *time.Timer
	// hijacked: upgraded; the handler now says when its handshake ends.
	hijacked bool
	// serving: its request has been read and is not yet answered
	// (StateActive to StateIdle). One that is neither this nor hijacked
	// may be closed to make way for a newcomer.
	serving bool
	// seq orders connections by admission: the oldest makes way first.
	seq uint64
}

// handshakes counts the connections in their handshake.
type handshakes struct {
	max         int
	answerLimit time.Duration // busyAnswerLimit, but for tests

	mu      sync.Mutex
	conns   map[net.Conn]*hsConn
	pending int // conns not busy
	busy    int
	seq     uint64 // the last admitted connection's hsConn.seq
	// Refusals not yet logged, when they last were, and when the last
	// refusal was.
	answered, closed, evicted int
	reportedAt                time.Time
	refusedAt                 time.Time
}

// verdict is what admit decided for a new connection.
type verdict int

const (
	admitted verdict = iota
	answerBusy
	dropped
)

// admit decides on a new connection. reports are the log lines of
// refusals now due: those of the last minute not yet logged, once the
// minute is over (whichever connection comes next, refused or not, so
// that a burst's end is logged soon after it, not with the next burst),
// and this connection's refusal, if it starts a burst. evicted, if not
// nil, is a waiting connection that made way for c: the caller closes it.
func (h *handshakes) admit(c net.Conn, now time.Time) (v verdict, reports []busyReport, evicted net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if (h.answered > 0 || h.closed > 0 || h.evicted > 0) && now.Sub(h.reportedAt) >= busyReportEvery {
		reports = append(reports, h.report(now, false))
	}
	if h.pending >= h.max {
		if evicted = h.oldestWaiting(); evicted != nil {
			delete(h.conns, evicted)
			h.pending--
			h.evicted++
		}
	}
	switch {
	case h.pending < h.max:
		h.pending++
		h.seq++
		h.conns[c] = &hsConn{seq: h.seq}
		if evicted == nil {
			return admitted, reports, nil
		}
		v = admitted
	case h.busy < h.max:
		h.busy++
		hc := &hsConn{busy: true}
		// A connection that is slow with its request is not waited for
		// as long as --header-timeout: it is closed unanswered.
		hc.timer = time.AfterFunc(h.answerLimit, func() { _ = c.Close() })
		h.conns[c] = hc
		h.answered++
		v = answerBusy
	default:
		h.closed++
		v = dropped
	}
	// A refusal (or an eviction) after a minute without one starts a
	// burst, logged at once.
	first := now.Sub(h.refusedAt) >= busyReportEvery
	h.refusedAt = now
	if first || now.Sub(h.reportedAt) >= busyReportEvery {
		reports = append(reports, h.report(now, first))
	}
	return v, reports, evicted
}

// oldestWaiting is the connection admitted first among those neither
// being answered nor upgraded, or nil.
func (h *handshakes) oldestWaiting() net.Conn {
	var oldest net.Conn
	var seq uint64
	for c, hc := range h.conns {
		if hc.busy || hc.hijacked || hc.serving {
			continue
		}
		if oldest == nil || hc.seq < seq {
			oldest, seq = c, hc.seq
		}
	}
	return oldest
}

// report takes the refusals not yet logged into a log line's worth.
func (h *handshakes) report(now time.Time, first bool) busyReport {
	r := busyReport{answered: h.answered, closed: h.closed, evicted: h.evicted, pending: h.pending, first: first}
	h.answered, h.closed, h.evicted, h.reportedAt = 0, 0, 0, now
	return r
}

// busyReport is one log line's worth of refusals.
type busyReport struct {
	answered, closed, evicted, pending int
	first                              bool // the first of a burst, not a running count
}

// forget drops c once it is closed, or once its handshake is over if it
// was hijacked (onlyHijacked): a connection that was not is still the
// http.Server's, which may read another request on it.
func (h *handshakes) forget(c net.Conn, onlyHijacked bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hc, ok := h.conns[c]
	if !ok || onlyHijacked && !hc.hijacked {
		return
	}
	delete(h.conns, c)
	if hc.busy {
		hc.timer.Stop()
		h.busy--
		return
	}
	h.pending--
}

// serving marks c's request as read (on), or its answer as sent (off):
// a keep-alive connection then waits for its next request, and may make
// way for a newcomer again.
func (h *handshakes) serving(c net.Conn, on bool) {
	h.mu.Lock()
	if hc, ok := h.conns[c]; ok {
		hc.serving = on
	}
	h.mu.Unlock()
}

// hijacked marks c as upgraded (or taken by the handler otherwise).
func (h *handshakes) hijacked(c net.Conn) {
	h.mu.Lock()
	if hc, ok := h.conns[c]; ok {
		hc.hijacked = true
	}
	h.mu.Unlock()
}

// isBusy reports whether c is to be answered 503, and stops its timer.
// One whose timer has just fired is answered too: a handler that wrote
// nothing would have net/http answer 200 OK, which a client would take
// for the server's answer; the timer's Close may still cut the 503 off.
func (h *handshakes) isBusy(c net.Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	hc, ok := h.conns[c]
	if !ok || !hc.busy {
		return false
	}
	hc.timer.Stop()
	return true
}

type hsConnKey struct{}

// ConnContext is for the public http.Server's ConnContext: it applies the
// handshake limit to each new connection and does what mux.ConnContext
// does. Pair it with ConnState; without both, connections are not
// limited.
func (s *Server) ConnContext(ctx context.Context, c net.Conn) context.Context {
	v, reports, evicted := s.hs.admit(c, time.Now())
	for _, r := range reports {
		s.logBusy(r)
	}
	if evicted != nil {
		// Its read fails at once: net/http closes it, unanswered.
		_ = evicted.Close()
		s.stats.refusedHandshakes.Add(1)
	}
	if v != admitted {
		s.stats.refusedHandshakes.Add(1)
	}
	if v == dropped {
		_ = c.Close() // its request is never read: net/http ends at once
		return ctx
	}
	return context.WithValue(mux.ConnContext(ctx, c), hsConnKey{}, c)
}

// ConnState is for the public http.Server's ConnState: with ConnContext,
// it keeps the handshake limit's count of connections.
func (s *Server) ConnState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateActive:
		// Its request has been read: it no longer makes way.
		s.hs.serving(c, true)
	case http.StateIdle:
		// Its answer has gone out, not merely been handed to net/http,
		// which writes it after the handler returns: a newcomer closing
		// it sooner would cut off an answer the client never reads.
		s.hs.serving(c, false)
	case http.StateHijacked:
		s.hs.hijacked(c)
	case http.StateClosed:
		s.hs.forget(c, false)
	}
}

// hsConnFrom is the request's connection, if the handshake limit tracks it.
func hsConnFrom(ctx context.Context) net.Conn {
	c, _ := ctx.Value(hsConnKey{}).(net.Conn)
	return c
}

// refuseBusy answers a request on a connection that came in over the
// handshake limit, and reports whether it was one.
func (s *Server) refuseBusy(w http.ResponseWriter, r *http.Request) bool {
	c := hsConnFrom(r.Context())
	if c == nil {
		return false
	}
	if !s.hs.isBusy(c) {
		return false
	}
	w.Header().Set("Retry-After", "1")
	w.Header().Set("Connection", "close")
	busy := count(s.cfg.MaxHandshakes, "connection is still in its handshake", "connections are still in their handshake")
	http.Error(w, fmt.Sprintf("sandmux: server busy: %s (--max-handshakes %d); retry in a moment", busy, s.cfg.MaxHandshakes), http.StatusServiceUnavailable)
	return true
}

// logBusy logs refusals at the handshake limit, once per burst and then
// at most once per busyReportEvery with their count.
func (s *Server) logBusy(r busyReport) {
	msg := "refusing connections: too many still in their handshake (upgrade, token, hello); those yet to send their request make way for newcomers, more are answered 503 or closed, and the next such line comes a minute later at the earliest"
	if !r.first {
		msg = "refused more connections since the last such line: too many in their handshake; the next such line comes a minute later at the earliest"
	}
	s.log.Warn(msg, slog.Int("made_way", r.evicted), slog.Int("refused_503", r.answered), slog.Int("closed_unread", r.closed),
		slog.Int("in_handshake", r.pending), slog.Int("max_handshakes", s.cfg.MaxHandshakes))
}

// handshake is one connection's way from its request to its session.
type handshake struct {
	start time.Time
	conn  net.Conn // nil when the handshake limit does not track it
}

// handshakeOver ends the handshake: the connection now carries a session (or a
// resumed one) and no longer counts against the limit.
func (s *Server) handshakeOver(hs *handshake, mode string) {
	if hs.conn != nil {
		s.hs.forget(hs.conn, true)
	}
	if s.cfg.OnHandshake != nil {
		s.cfg.OnHandshake(mode, time.Since(hs.start))
	}
}
