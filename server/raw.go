package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/internal/logflood"
	"github.com/sandmux/sandmux/mux"
)

// dialRaw connects a raw client's target before its upgrade is accepted,
// so that a target that is down is told as the upgrade's answer (502 and
// the same words a sandmux stream gets), which a raw client such as
// websocat shows, rather than as a WebSocket that opens and closes at
// once, which looks like a clean end. It reports whether the upgrade may
// go on; if it may, the caller owns tc.
func (s *Server) dialRaw(w http.ResponseWriter, r *http.Request) (tc net.Conn, ok bool) {
	target := s.allow.def
	tc, err := s.dial(target)
	if err != nil {
		s.stats.targetErrors.Add(1)
		// INFO, as for a stream: the client's request failed (its
		// target is down), not the server; WARN is for the server's
		// own trouble.
		s.log.Info("raw session: cannot connect target", logflood.Limit, "remote", r.RemoteAddr, "target", target, "err", err)
		rep := mux.Reply{Status: dialStatus(err), Target: target, Message: dialMessage(err)}
		http.Error(w, "sandmux: "+rep.Err().Error(), http.StatusBadGateway)
		return nil, false
	}
	return tc, true
}

// serveRaw splices one WebSocket to the default target, exactly as
// `websocat -b --exit-on-eof ws-l:... tcp:...` did, so clients that offer no
// subprotocol keep working. The WebSocket cannot half-close, so either side
// ending ends both. Close ends it with a close frame saying so (status
// 1012, service restart: a client's WebSocket library reads 1001, going
// away, as a clean end, like 1000).
func (s *Server) serveRaw(ws *websocket.Conn, tc net.Conn, log *slog.Logger) {
	log = log.With("mode", "raw", "target", s.allow.def)
	// Its own context, cancelled only after the close frame was sent: the
	// server's context would drop the connection without one.
	ctx, cancel := context.WithCancel(context.WithoutCancel(s.ctx))
	defer cancel()
	if !s.trackRaw(ws) {
		// Reset, as serveStream does a target connected for a stream
		// cut meanwhile: a clean end with no data would read as an
		// empty session to it.
		mux.Abort(tc)
		_ = ws.Close(websocket.StatusServiceRestart, shuttingDown)
		return
	}
	defer s.untrackRaw(ws)
	s.logSession(log, "session started")
	start := time.Now()
	side := &rawSide{Conn: mux.RawNetConn(ctx, ws), ws: ws}
	err := mux.Splice(side, mux.Guarded(tc))
	attrs := []any{"reason", s.rawEndReason(side, err), "duration", time.Since(start).Round(time.Millisecond),
		"bytes_in", side.in.Load(), "bytes_out", side.out.Load()}
	if err != nil && !s.isClosed() {
		attrs = append(attrs, "err", err)
	}
	s.logSession(log, "session ended", attrs...)
}

// rawEndReason says why a raw session ended, as endReason does for a
// sandmux one: its "session ended" line said only err=<nil> for any
// clean end, and on shutdown the server's own close frame, read back, as
// the error.
func (s *Server) rawEndReason(side *rawSide, err error) string {
	switch {
	case s.isClosed():
		return "server shutting down"
	case side.clientEnded.Load():
		return "client closed the connection"
	case side.clientLost.Load():
		return "client lost (its connection ended without a close)"
	case err == nil:
		return "target closed the connection"
	}
	return "target connection failed"
}

// isClosed reports whether Close has begun.
func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// rawSide is the raw WebSocket in the splice. A target that fails (reset,
// not ended) closes it with status 1011 and says so: a normal close is a
// clean end to the client's WebSocket library, and its program would take
// the bytes it got for the whole. It counts the bytes each way and notes
// how the client's side ended, for the session's last log line.
type rawSide struct {
	net.Conn
	ws          *websocket.Conn
	in, out     atomic.Int64
	clientEnded atomic.Bool // its close frame read: a clean end
	clientLost  atomic.Bool // its reads failed first, without a close
	// closing: the splice closes or aborts this side, so what its reads
	// return from now on is the server's doing, not the client's.
	closing atomic.Bool
}

func (r *rawSide) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.in.Add(int64(n))
	switch {
	case err == nil, r.closing.Load():
	case err == io.EOF: //nolint:errorlint // NetConn's own for a close frame; a cut connection's EOF comes wrapped
		r.clientEnded.Store(true)
	case !r.clientEnded.Load():
		r.clientLost.Store(true)
	}
	return n, err
}

func (r *rawSide) Close() error {
	r.closing.Store(true)
	return r.Conn.Close()
}

func (r *rawSide) Write(p []byte) (int, error) {
	n, err := r.Conn.Write(p)
	r.out.Add(int64(n))
	return n, err
}

// Abort implements mux.Aborter.
func (r *rawSide) Abort() {
	r.closing.Store(true)
	_ = r.ws.Close(websocket.StatusInternalError, targetFailed)
}

// targetFailed is the close reason a raw client gets when its target
// failed.
const targetFailed = "the connection inside the sandbox failed"

// shuttingDown is the close reason a raw client gets when the server stops.
const shuttingDown = "server is shutting down"

// trackRaw records a raw connection for Close, unless the server is closed.
func (s *Server) trackRaw(ws *websocket.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.raws[ws] = struct{}{}
	return true
}

func (s *Server) untrackRaw(ws *websocket.Conn) {
	s.mu.Lock()
	delete(s.raws, ws)
	s.mu.Unlock()
}
