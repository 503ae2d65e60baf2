//go:build !windows

package agent

import (
	"testing"

	"github.com/sandmux/sandmux/internal/testutil"
)

// ssh killed (kill -9, or SIGTERM before its hang-up reaches the proxy)
// while output flows: the agent's next write to ssh's stdin pipe fails
// with EPIPE. That is ssh's end, not the tunnel's, so the verdict is a
// clean one and the proxy prints nothing, as a proxy splicing the bytes
// itself says nothing then; it printed "sandmux: write stdout: broken
// pipe".
func TestHandoffReaderGoneIsQuiet(t *testing.T) {
	r := newHandoffRig(t)
	p := testutil.NewStdioPipes(t)
	h := r.open(t, p)
	p.EchoOnce(t, "before")
	_ = p.FromOut.Close() // ssh is gone: nobody reads its stdin any more
	// The echo target sends this back, and the agent's write fails.
	if _, err := p.ToIn.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	_ = p.ToIn.Close()
	waitDone(t, h)
	if err := h.Err(); err != nil {
		t.Fatalf("verdict %v, want a clean end: ssh, not the tunnel, went away", err)
	}
}
