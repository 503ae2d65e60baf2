package server

import (
	"log/slog"

	"github.com/sandmux/sandmux/internal/logflood"
)

// sessionLineBurst is how many "session started" lines, and as many
// "session ended", a server without a token writes a minute before it
// counts the rest (logflood). Ordinary use never comes near: the agent
// holds one WebSocket per sandbox, and even `proxy --no-agent` in a
// tight loop of scp opens a few a second.
const sessionLineBurst = 600

// logSession writes a session's "session started" or "session ended"
// line. With a token, only its holders open sessions, and each line is
// written as ever: an operator reads who came and why they left. Without
// one, anyone who can reach the URL can open sessions in a loop (the
// sandbox's port is public), two lines each, and bury every other line:
// there the lines are limited, generously (sessionLineBurst), and what
// is dropped is counted in a "log lines suppressed" line.
// sandmux_sessions_total counts every session either way.
func (s *Server) logSession(log *slog.Logger, msg string, args ...any) {
	if s.cfg.Token == "" {
		args = append(args, logflood.LimitTo(int(s.sessionLines.Load())))
	}
	log.Info(msg, args...)
}
