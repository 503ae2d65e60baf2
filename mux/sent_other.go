//go:build !linux

package mux

import "io"

// awaitSent is Linux only (SIOCOUTQ); elsewhere a finished side is closed
// at once.
func awaitSent(io.Closer) {}
