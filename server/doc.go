// Package server is the sandbox half of sandmux: an http.Handler that
// upgrades WebSocket requests, runs a yamux server session on each (or, for
// clients that offer no subprotocol, splices the one WebSocket to the
// default target as websocat did), and connects every stream to its
// allowlisted target.
package server
