package server_test

import (
	"testing"

	"github.com/sandmux/sandmux/server"
)

// A grant cannot be taken back, so every open stream holds its start
// window of the session's receive window, idle or not. With the defaults,
// a session at the server's stream limit whose other streams are all idle
// (ssh sessions left open, forwarded connections at rest) must still leave
// a busy stream room to grow to its largest window: at a 2 MiB start, 150
// idle streams left a new stream 256 KiB, and a 256 MiB download on it at
// 50 ms took 55 s instead of 1.
func TestDefaultWindowsLeaveABusyStreamRoom(t *testing.T) {
	c := server.DefaultConfig()
	m := c.Mux
	idle := uint64(c.MaxStreams-1) * uint64(m.StreamWindow)
	if idle+uint64(m.MaxStreamWindow) > m.SessionWindow {
		t.Errorf("%d idle streams hold %d of the session window %d, leaving less than a stream's largest window %d; lower StreamWindow or raise SessionWindow",
			c.MaxStreams-1, idle, m.SessionWindow, m.MaxStreamWindow)
	}
}
