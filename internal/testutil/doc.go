// Package testutil holds the helpers that tests across sandmux share: a
// loopback TCP server (an echo service, or any handler), a buffer that
// goroutines write while a test polls it, polling with a deadline, free
// loopback ports, and a few small functions tests use to read logs and
// count descriptors.
//
// It imports nothing from sandmux, so any package's tests may use it,
// in-package ones included, without an import cycle.
package testutil
