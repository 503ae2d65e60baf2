//go:build linux

package e2e

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/sshtest"
)

// fdpassClient runs the OpenSSH clients with ProxyUseFdpass yes: ssh
// waits on its ProxyCommand's stdin and stdout (one socket) for the
// connection's descriptor, and uses it once the ProxyCommand has exited.
type fdpassClient struct{ *sshtest.Server }

func (c fdpassClient) Command(ctx context.Context, t testing.TB, program, proxy string, args ...string) *exec.Cmd {
	return c.Server.Command(ctx, t, program, proxy, append([]string{"-o", "ProxyUseFdpass=yes"}, args...)...)
}

// TestProxyUseFdpass: with ProxyUseFdpass yes, `sandmux proxy --fdpass`
// passes ssh a socket whose other end the agent serves, and exits, so no
// sandmux process stays beside the ssh. Before, the proxy wrote the
// stream's bytes where ssh waited for a descriptor: ssh said
// "mm_receive_fd: no message header", the proxy "read unix @->@: ...
// connection reset by peer".
func TestProxyUseFdpass(t *testing.T) {
	t.Parallel()
	sshd := startSSHD(t, "scp")
	srv := startServer(t, serverOpts{Target: sshd.Addr})
	dir := newAgentDir(t)
	ctx := testContext(t, 3*time.Minute)
	client := fdpassClient{sshd}
	proxy := proxyCommand(srv.URL, dir, "--fdpass")

	cmd := client.Command(ctx, t, "ssh", proxy, "sandbox", "echo", "through")
	cmd.Env = childEnv()
	if r := run(cmd, ""); r.err != nil || r.stdout != "through\n" {
		t.Fatalf("ssh with ProxyUseFdpass: want %q\n%s", "through\n", r)
	}
	scpRoundTrip(ctx, t, client, proxy, 8<<20+77)

	// ssh uses the connection only once the proxy has exited, so by the
	// time the remote command prints, no proxy may be left. (Without
	// resumption, so that the server's death below cuts the stream.)
	cmd = client.Command(ctx, t, "ssh", proxyCommand(srv.URL, dir, "--fdpass", "--no-resume"), "sandbox", "echo ready; sleep 60")
	cmd.Env = childEnv()
	bg := startBackgroundSSH(t, cmd)
	if left := processes(func(_ int, args []string) bool {
		return args[0] == sandmuxBin && len(args) > 1 && args[1] == "proxy" && slices.Contains(args, dir)
	}); len(left) > 0 {
		t.Errorf("sandmux proxy still running (pids %v) beside an ssh with ProxyUseFdpass", left)
	}
	if bg.exited() {
		t.Fatalf("ssh ended early: %s", bg.stderr())
	}
	if st := status(t, dir); st.OpenStreams != 1 {
		t.Errorf("the agent carries %d streams, want the ssh's one: %+v", st.OpenStreams, st)
	}
	// With the proxy gone, the agent tells a cut on ssh's stderr.
	srv.Kill()
	waitFor(t, 30*time.Second, "ssh to end with the cut", func() (bool, string) { return bg.exited(), bg.stderr() })
	bg.waitStderr(t, lostLine)
}

// TestProxyUseFdpassMismatch: --fdpass without ProxyUseFdpass, the option
// without the flag, and --fdpass with --no-agent each fail with one line
// saying what to change, before any dial.
func TestProxyUseFdpassMismatch(t *testing.T) {
	t.Parallel()
	sshd := startSSHD(t)
	srv := startServer(t, serverOpts{Target: sshd.Addr})
	dir := newAgentDir(t)
	ctx := testContext(t, time.Minute)
	for _, c := range []struct {
		name   string
		fdpass bool // ssh's ProxyUseFdpass
		proxy  string
		want   string
	}{
		{"option without the flag", true, proxyCommand(srv.URL, dir),
			"sandmux: ssh passed a socket to be given the connection over (ProxyUseFdpass yes): add --fdpass to the ProxyCommand (`sandmux proxy --fdpass %h`), or set ProxyUseFdpass no"},
		{"flag without the option", false, proxyCommand(srv.URL, dir, "--fdpass"),
			"sandmux: --fdpass: stdout is not the socket ssh gives with ProxyUseFdpass: add ProxyUseFdpass yes beside the ProxyCommand (-o ProxyUseFdpass=yes), or drop --fdpass"},
		{"without the agent", true, proxyCommand(srv.URL, "", "--fdpass"),
			"sandmux: --fdpass needs the shared agent (ssh uses the connection only once this process has exited): drop --no-agent and --raw, or --fdpass and ProxyUseFdpass"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var cmd *exec.Cmd
			if c.fdpass {
				cmd = fdpassClient{sshd}.Command(ctx, t, "ssh", c.proxy, "sandbox", "true")
			} else {
				cmd = sshd.Command(ctx, t, "ssh", c.proxy, "sandbox", "true")
			}
			cmd.Env = childEnv()
			r := run(cmd, "")
			if r.err == nil || !strings.Contains(r.stderr, c.want+"\n") {
				t.Fatalf("want a failure saying\n  %s\n%s", c.want, r)
			}
		})
	}
	if srv.Count(logSessionStarted) != 0 {
		t.Errorf("a refused --fdpass dialled the server:\n%s", srv.Log())
	}
}
