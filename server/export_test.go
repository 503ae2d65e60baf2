package server

import "time"

// SetBusyAnswerLimit sets how long a connection over the handshake limit
// has to send its request, for tests.
func (s *Server) SetBusyAnswerLimit(d time.Duration) {
	s.hs.mu.Lock()
	s.hs.answerLimit = d
	s.hs.mu.Unlock()
}
