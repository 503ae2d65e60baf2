package server

import (
	"context"
	"errors"
	"time"
)

// drainPoll is how often Shutdown looks for open streams.
const drainPoll = 20 * time.Millisecond

// Shutdown drains the server, as http.Server.Shutdown drains HTTP: it
// refuses new sessions and new streams, lets the open streams and raw
// connections finish until ctx ends, and then closes every session
// (Close), cutting what is still open. Resuming a session stays allowed,
// so that a stream whose WebSocket is lost meanwhile can still finish.
// It returns ctx's error if streams were still open when ctx ended.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	defer s.Close()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for s.stats.streamsActive.Load() > 0 || s.rawActive.Load() > 0 {
		select {
		case <-ctx.Done():
			// Said here, before Close ends each session with a line of
			// its own: said after, it followed the lines of the very
			// sessions it was about.
			msg := "streams still open at the shutdown timeout; closing them"
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				msg = "streams still open as the drain was cut short; closing them"
			}
			s.log.Info(msg, "streams", s.stats.streamsActive.Load(), "raw_sessions", s.rawActive.Load())
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// drainingMessage is the refusal of a stream opened while the server
// drains.
const drainingMessage = "server is shutting down; open a new connection in a moment"
