package server

import (
	"log/slog"
	"net"

	"github.com/sandmux/sandmux/mux"
)

// serveRaw splices one WebSocket to the default target, exactly as
// `websocat -b --exit-on-eof ws-l:... tcp:...` did, so clients that offer no
// subprotocol keep working. The WebSocket cannot half-close, so either side
// ending ends both.
func (s *Server) serveRaw(conn net.Conn, log *slog.Logger) {
	log = log.With("mode", "raw", "target", s.allow.def)
	tc, err := s.dial(s.allow.def)
	if err != nil {
		log.Warn("raw session: cannot connect target", "err", err)
		_ = conn.Close()
		return
	}
	log.Info("session started")
	s.rawActive.Add(1)
	defer s.rawActive.Add(-1)
	err = mux.Splice(conn, mux.Direct(tc))
	log.Info("session ended", "err", err)
}
