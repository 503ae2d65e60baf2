package agent

import (
	"testing"
	"time"
)

// A --persist under 4 ns made the reaper's ticker 0, which panics:
// `sandmux agent --foreground --persist 1ns` crashed with a stack trace.
// runAgent waits for Serve, which waits for its reaper, which makes its
// ticker first.
func TestTinyPersistDoesNotPanic(t *testing.T) {
	runAgent(t, shortDir(t), func(c *Config) { c.Persist = time.Nanosecond })
}
