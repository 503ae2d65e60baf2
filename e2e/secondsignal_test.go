//go:build linux

package e2e

import (
	"syscall"
	"testing"
	"time"
)

// TestServerSecondSignalClosesSessions: a second SIGTERM while the server
// drains closes every session now, and an ssh through the agent is told
// that the server closed it. The second signal was left to Go's default,
// which killed the process: no close reached the agent, which took the
// server for a lost path, tried to resume it for its --resume-timeout,
// and then told the ssh "could not be resumed".
func TestServerSecondSignalClosesSessions(t *testing.T) {
	sshd := startSSHD(t)
	srv := startServer(t, serverOpts{Target: sshd.Addr, Args: []string{"--shutdown-timeout", "1m"}})
	dir := newAgentDir(t)
	ctx := testContext(t, 2*time.Minute)
	proxy := proxyCommand(srv.URL, dir, "--resume-timeout", "5s")
	cmd := sshd.Command(ctx, t, "ssh", proxy, "sandbox", "echo ready; exec sleep 60")
	cmd.Env = childEnv()
	bg := startBackgroundSSH(t, cmd)

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the server to start its drain", func() (bool, string) {
		return srv.Count(`msg="shutting down;`) == 1, srv.Log()
	})
	code, took := srv.Stop(syscall.SIGTERM)
	t.Logf("server exited %d %v after the second SIGTERM", code, took.Round(time.Millisecond))
	if code != 0 || srv.Count(`msg="second signal: closing every session now"`) != 1 ||
		srv.Count(`msg="streams still open as the drain was cut short; closing them"`) != 1 {
		t.Errorf("server exited %d after the second SIGTERM, want 0 with its lines\n%s", code, srv.Log())
	}
	select {
	case <-bg.done:
	case <-time.After(3 * time.Second):
		t.Fatalf("ssh still running 3s after the server's second SIGTERM; stderr %q", bg.stderr())
	}
	bg.waitStderr(t, "sandmux: the server closed the session to sandbox (it is shutting down")
}
