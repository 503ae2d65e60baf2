//go:build !linux && !darwin

package mux

import "io"

// awaitSent is Linux and macOS only (SIOCOUTQ, SO_NWRITE); elsewhere a
// finished side is closed at once.
func awaitSent(io.Closer) {}
