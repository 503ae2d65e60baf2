//go:build linux

package e2e

import (
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestForwardSaysHostRepeatsSuffix: `sandmux forward … abc.x`, with HOST
// typed as for `ssh abc.x` and a --url that adds ".x" again, says so on
// the line of each connection it cannot carry, as `sandmux proxy` and
// `sandmux doctor` do, rather than only that the doubled name failed.
func TestForwardSaysHostRepeatsSuffix(t *testing.T) {
	t.Parallel()
	const hint = "(HOST abc.x ends in .x, which --url adds again: give the sandbox id alone (abc) or add --strip-suffix .x)"
	for _, mode := range []string{"agent", "no-agent"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, time.Minute)
			args := []string{"forward", "-L", "127.0.0.1:0:127.0.0.1:22", "--connect-timeout", "1s",
				"--url", "ws://127.0.0.1:1/{host}.x"} // port 1: refused at once
			if mode == "agent" {
				args = append(args, "--agent-dir", newAgentDir(t))
			} else {
				args = append(args, "--no-agent")
			}
			fwd := edStart(t, ctx, nil, append(args, "abc.x")...)
			addr := fwd.waitLine(t, edForwardingLine, 20*time.Second)[1]
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			line := fwd.waitLine(t, regexp.MustCompile(`^sandmux: forward `+regexp.QuoteMeta(addr)+` -> .*`), 30*time.Second)[0]
			if !strings.Contains(line, "x.x") || !strings.HasSuffix(line, hint) {
				t.Errorf("forward said %q, want the doubled name's failure ending in %q", line, hint)
			}
			if code := fwd.stop(t); code != 0 {
				t.Errorf("forward exited %d on SIGTERM; stderr:\n%s", code, fwd.Stderr())
			}
		})
	}
}
