package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"

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
		s.log.Warn("raw session: cannot connect target", logflood.Limit, "remote", r.RemoteAddr, "target", target, "err", err)
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
	log.Info("session started")
	err := mux.Splice(rawSide{Conn: mux.RawNetConn(ctx, ws), ws: ws}, mux.Guarded(tc))
	log.Info("session ended", "err", err)
}

// rawSide is the raw WebSocket in the splice. A target that fails (reset,
// not ended) closes it with status 1011 and says so: a normal close is a
// clean end to the client's WebSocket library, and its program would take
// the bytes it got for the whole.
type rawSide struct {
	net.Conn
	ws *websocket.Conn
}

// Abort implements mux.Aborter.
func (r rawSide) Abort() { _ = r.ws.Close(websocket.StatusInternalError, targetFailed) }

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
