package server

import (
	"time"

	"github.com/sandmux/sandmux/mux"
)

// SetBusyAnswerLimit sets how long a connection over the handshake limit
// has to send its request, for tests.
func (s *Server) SetBusyAnswerLimit(d time.Duration) {
	s.hs.mu.Lock()
	s.hs.answerLimit = d
	s.hs.mu.Unlock()
}

// HandshakeCounts is what the handshake limit holds now: connections
// with a place, those answered 503, and every one it tracks.
func (s *Server) HandshakeCounts() (pending, busy, tracked int) {
	s.hs.mu.Lock()
	defer s.hs.mu.Unlock()
	return s.hs.pending, s.hs.busy, len(s.hs.conns)
}

// ReceiveHeld sums what the live sessions' streams hold of their receive
// windows (mux.Session.ReceiveHeld), outside s.mu.
func (s *Server) ReceiveHeld() uint64 {
	s.mu.Lock()
	sessions := make([]*mux.Session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	var sum uint64
	for _, sess := range sessions {
		sum += sess.ReceiveHeld()
	}
	return sum
}

// Unacked sums what the resumable sessions hold sent and not yet
// acknowledged (mux.Resumable.Unacked).
func (s *Server) Unacked() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum uint64
	for _, d := range s.resumables {
		sum += uint64(d.rc.Unacked())
	}
	return sum
}

// Serving counts the connections whose request has been read and whose
// answer net/http has not yet finished (StateActive to StateIdle), but
// for upgraded ones.
func (s *Server) Serving() (n int) {
	s.hs.mu.Lock()
	defer s.hs.mu.Unlock()
	for _, hc := range s.hs.conns {
		if hc.serving && !hc.hijacked {
			n++
		}
	}
	return n
}

// SetSessionLineBurst sets how many session lines a server without a
// token writes a minute, for tests.
func (s *Server) SetSessionLineBurst(n int) { s.sessionLines.Store(int64(n)) }
