//go:build !windows

package agent

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/sandmux/sandmux/internal/testutil"
)

// An agent that goes away (killed) after it said it takes ssh's pipes but
// before it took them leaves the proxy one line that says so, whichever
// way the proxy learns it: its hand-off fails (the agent's end is closed),
// or the hand-off went into the socket of an agent that then died and the
// verdict never comes. The first said "hand stdin and stdout to the
// sandmux agent: write unix @->/…/agent.sock: write: broken pipe".
func TestHandoffAgentGoneMidHandoff(t *testing.T) {
	for range 20 { // either way may come first
		dir := shortDir(t)
		oldAgent(t, dir, reply{Version: protoVersion, OK: true, Handoff: true, Detach: true}, func(c *net.UnixConn) {
			_ = c.Close() // gone, without reading the descriptors
		})
		p := testutil.NewStdioPipes(t)
		_, h, err := OpenStdio(context.Background(), dir, noStart, OpenRequest{URL: "ws://127.0.0.1:1"}, p.In, p.Out)
		if err == nil {
			waitDone(t, h)
			err = h.Err()
		}
		var se *StreamError
		if !errors.As(err, &se) || (se.Reason != errAgentGone && se.Reason != errAgentGoneHandoff) {
			t.Fatalf("the agent gone mid-hand-off: %v; want it said so", err)
		}
	}
}
