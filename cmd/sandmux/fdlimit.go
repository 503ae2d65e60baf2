package main

import (
	"log/slog"

	"github.com/sandmux/sandmux/server"
)

// descriptorsNeeded is about how many file descriptors cfg's limits let
// clients make the server hold at once: a target connection per stream,
// a WebSocket per session (a raw one also its target), a connection per
// handshake, and a few of the process's own.
func descriptorsNeeded(cfg server.Config) uint64 {
	return uint64(cfg.MaxTotalStreams) + 2*uint64(cfg.MaxSessions) + uint64(cfg.MaxHandshakes) + 32
}

// warnFewDescriptors says once, at start-up, when the process may open
// fewer file descriptors than its limits let clients make it hold: out of
// them, it can accept no connection (not even a resume) and connect no
// stream, so the limits would not be what protects it.
func warnFewDescriptors(log *slog.Logger, cfg server.Config, limit uint64, known bool) {
	if need := descriptorsNeeded(cfg); known && limit < need {
		log.Warn("the file descriptor limit is below what clients may make the server hold; raise it (ulimit -n) or lower --max-total-streams and --max-sessions",
			"limit", limit, "needed", need)
	}
}
