//go:build linux

package e2e

import (
	"net"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
)

// TestForwardLocalhostBindsBothLoopbacks: -L localhost:P listens on
// 127.0.0.1 and [::1] at the same port, as ssh -L does, and both carry
// connections (a client trying ::1 first found nothing there).
func TestForwardLocalhostBindsBothLoopbacks(t *testing.T) {
	t.Parallel()
	requireIPv6Loopback(t)
	echo := testutil.EchoServer(t).Addr
	srv := startServer(t, serverOpts{Allow: []string{echo}})
	ctx := testContext(t, time.Minute)
	fwd := edStart(t, ctx, nil, "forward", "-L", "localhost:0:"+echo, "--url", srv.URL, "--no-agent", "box")
	v4 := fwd.waitLine(t, edForwardingLine, 20*time.Second)[1]
	v6 := fwd.waitLine(t, edForwardingLine, 20*time.Second)[1]
	h4, p4, _ := net.SplitHostPort(v4)
	h6, p6, _ := net.SplitHostPort(v6)
	if h4 != "127.0.0.1" || h6 != "::1" || p4 != p6 {
		t.Fatalf("forwarding on %s and %s, want 127.0.0.1 and [::1] at one port", v4, v6)
	}
	for _, addr := range []string{v4, v6} {
		dialEchoed(t, addr)
	}
	if code := fwd.stop(t); code != 0 {
		t.Errorf("forward exited %d on SIGTERM; stderr:\n%s", code, fwd.Stderr())
	}
}
