package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/server"
)

// At the server's limit across all sessions (--max-total-streams), a
// proxy's refused stream is told the server's line, and neither it nor
// the next proxy gets a WebSocket of its own: another session would be
// refused as well. The agent took the refusal for its session's own limit
// (--max-streams), told the user to run the command again, and gave every
// later proxy a WebSocket that the server refused too. Both ways a
// proxy's stream is opened are covered: early (the refusal comes after
// ssh's first bytes) and, on a crowded session, waiting for the reply.
func TestTotalStreamLimitOpensNoWebSockets(t *testing.T) {
	const total = 2
	for _, tc := range []struct {
		name       string
		maxStreams int
	}{
		{"early", server.DefaultConfig().MaxStreams},
		{"crowded", 4}, // crowdedAt(4) is the 2 held streams
		// The session is at its own limit too: it was told that one, and
		// the proxy got a WebSocket of its own, refused as well.
		{"session full too", total},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, url := testutil.SandmuxServer(t, func(c *server.Config) {
				c.MaxStreams, c.MaxTotalStreams = tc.maxStreams, total
			})
			dir := shortDir(t)
			runAgent(t, dir, nil)
			forward := OpenRequest{URL: url, Host: "box", ConnectTimeout: 5 * time.Second}
			proxy := forward
			proxy.Overflow = true
			for i := range total {
				c, err := echoVia(dir, forward, fmt.Sprint("held ", i))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
			}
			const want = "server at its limit of 2 streams across all sessions; close some connections to it or raise --max-total-streams"
			for i := range 3 {
				c, err := echoVia(dir, proxy, "one too many")
				if err == nil {
					c.Close()
				}
				if err == nil || err.Error() != want {
					t.Fatalf("proxy %d past the server's limit: %v\nwant %q", i+1, err, want)
				}
			}
			if n := srv.Stats().Sessions; n != 1 {
				t.Fatalf("server saw %d WebSockets, want 1: no other session has room at the server's own limit", n)
			}
		})
	}
}
