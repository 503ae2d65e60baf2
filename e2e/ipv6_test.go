//go:build linux

package e2e

import (
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/sshtest"
)

// requireIPv6Loopback skips a test that needs ::1 on a machine without
// it. It skips even under CI=true, unlike sshtest.Require: a container's
// network may legitimately have no IPv6 at all (Docker's default), and
// that is the machine's setting, not a missing install.
func requireIPv6Loopback(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("this machine has no IPv6 loopback (::1): %v; skipped even under CI=true, since containers may run without IPv6", err)
	}
	_ = ln.Close()
}

// TestSSHAndSCPOverIPv6Loopback: real ssh and scp reach sshd through a
// sandmux server that listens on [::1] only, with the host given as an
// IPv6 address, as README shows: `ssh ::1` (%h is ::1) under
// ws://[{host}]:PORT, `ssh [::1]` (%h keeps the brackets) under
// ws://{host}:PORT, and scp, which passes ::1 for [::1]:PATH, both ways
// with checksums. Both templates fill in ws://[::1]:PORT, so the agent
// holds one session for all of them; a --no-agent ssh dials its own.
func TestSSHAndSCPOverIPv6Loopback(t *testing.T) {
	t.Parallel()
	requireIPv6Loopback(t)
	sshd := startSSHD(t, "ssh", "scp")
	srv := startServer(t, serverOpts{Target: sshd.Addr, Host: "::1"})
	ctx := testContext(t, 3*time.Minute)
	dir := newAgentDir(t)

	// Quoted for the shell ssh runs the ProxyCommand with, as a user
	// writes it in ssh_config; %h is left as README shows it. A short
	// --connect-timeout makes a server not on [::1] fail fast.
	proxy := func(url string, extra string) string {
		mode := " --agent-dir " + dir
		if extra == " --no-agent" {
			mode = "" // --agent-dir with it is refused
		}
		return fmt.Sprintf("%s proxy%s --connect-timeout 10s%s --url '%s' %%h", sandmuxBin, mode, extra, url)
	}
	bracketed := proxy(fmt.Sprintf("ws://[{host}]:%d", srv.Port), "")
	bare := proxy(fmt.Sprintf("ws://{host}:%d", srv.Port), "")

	for _, c := range []struct{ proxy, host string }{
		{bracketed, "::1"},
		{bare, "[::1]"},
		{bracketed, "[::1]"},
		{bare, "::1"},
		{proxy(fmt.Sprintf("ws://{host}:%d", srv.Port), " --no-agent"), "::1"},
	} {
		cmd := sshd.Command(ctx, t, "ssh", c.proxy, c.host, "echo", "v6")
		cmd.Env = childEnv()
		if r := run(cmd, ""); r.err != nil || r.stdout != "v6\n" {
			t.Fatalf("ssh %s echo v6 through %q: want \"v6\\n\"\n%s", c.host, c.proxy, r)
		}
	}

	local := t.TempDir()
	src := filepath.Join(local, "up.bin")
	want := sshtest.RandomFile(t, src, 4<<20)
	remote := filepath.Join(sshd.Dir, "remote.bin")
	back := filepath.Join(local, "back.bin")
	for _, step := range []struct{ name, proxy, from, to string }{
		{"upload", bracketed, src, "[::1]:" + remote},
		{"download", bare, "[::1]:" + remote, back},
	} {
		cmd := sshd.Command(ctx, t, "scp", step.proxy, "-q", step.from, step.to)
		cmd.Env = childEnv()
		if r := run(cmd, ""); r.err != nil {
			t.Fatalf("scp %s through %q: %s", step.name, step.proxy, r)
		}
	}
	if got := sshtest.FileSHA256(t, remote); got != want {
		t.Fatalf("uploaded file sha256 %s, want %s", got, want)
	}
	if got := sshtest.FileSHA256(t, back); got != want {
		t.Fatalf("downloaded file sha256 %s, want %s", got, want)
	}

	wantURL := fmt.Sprintf("ws://[::1]:%d", srv.Port)
	if s := onlySession(t, status(t, dir)); s.URL != wantURL || s.StreamsTotal != 6 {
		t.Errorf("agent session %s with %d streams, want %s with 6 (four ssh, two scp)", s.URL, s.StreamsTotal, wantURL)
	}
	if n := srv.Count(logSessionStarted, logModeSandmux); n != 2 {
		t.Errorf("server logged %d sandmux sessions, want 2 (the agent's and the --no-agent proxy's)\n%s", n, srv.Log())
	}
}
