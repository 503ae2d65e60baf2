//go:build linux

package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/netem"
	"github.com/sandmux/sandmux/internal/testutil"
)

// TestNoAgentHangupReleasesStdio: when ssh exits it hangs up on its
// ProxyCommand, whose stderr it shared. A caller capturing that output
// ($(ssh ... 2>&1)) reads until every holder is gone, so a --no-agent
// proxy must let go of its stdio before it closes its session, a round
// trip to the server, here one that never comes (the path is frozen).
func TestNoAgentHangupReleasesStdio(t *testing.T) {
	t.Parallel()
	echo := testutil.EchoServer(t)
	srv := startServer(t, serverOpts{Target: echo.Addr})
	path, err := netem.Start(netem.Config{Target: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = path.Close() })
	ctx := testContext(t, time.Minute)

	cmd := sandmux(ctx, nil, "proxy", "--no-agent", "--url", "ws://"+path.Addr(), "sandbox")
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Only the proxy holds the far ends now, as when ssh has exited.
	inR.Close()
	outW.Close()
	errW.Close()
	defer inW.Close()
	defer outR.Close()
	defer errR.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	if _, err := inW.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 6)
	if _, err := io.ReadFull(outR, got); err != nil || string(got) != "hello\n" {
		t.Fatalf("echo through the proxy: %q, %v", got, err)
	}

	path.Freeze()
	defer path.Thaw()
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	inW.Close()
	stderrClosed := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(errR)
		stderrClosed <- b
	}()
	select {
	case b := <-stderrClosed:
		// The frozen path holds the close for its whole budget (seconds),
		// so a proxy that let go first is still there.
		if processGone(cmd.Process.Pid) {
			t.Fatalf("stderr closed only when the proxy exited: it held ssh's pipes through its close; stderr %q", b)
		}
		if len(b) != 0 {
			t.Errorf("stderr after a normal hangup: %q, want nothing", b)
		}
	case err := <-exited:
		t.Fatalf("the proxy exited (%v) before a frozen path let its close finish", err)
	case <-ctx.Done():
		t.Fatal("stderr never closed")
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("proxy after a hangup: %v, want exit 0", err)
		}
	case <-ctx.Done():
		t.Fatal("the proxy never exited")
	}
}

// TestSSHConnectTimeoutSaysWhy: ssh's ConnectTimeout bounds its wait for
// the server's banner; when it runs out ssh prints only "Connection timed
// out during banner exchange" and hangs up on its ProxyCommand. A proxy
// still waiting for its session must then say why there is none, or a
// user with ConnectTimeout in ~/.ssh/config never sees sandmux's reason,
// on a terminal (where its progress line was cleared) or not.
func TestSSHConnectTimeoutSaysWhy(t *testing.T) {
	t.Parallel()
	sshd := startSSHD(t)
	ctx := testContext(t, time.Minute)
	// Nothing listens here: the agent's dials are refused, and it retries.
	deadURL := fmt.Sprintf("ws://127.0.0.1:%d", testutil.FreePort(t))
	// This one takes connections and never answers: a --no-agent
	// proxy's one dial waits out its limit (15 s) unless ssh gives up.
	silent := testutil.Serve(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	// Started beforehand, so that its first refused dial comes well
	// within ssh's 2 s on a loaded machine.
	agentDir := newAgentDir(t)
	if r := run(sandmux(ctx, nil, "agent", "--agent-dir", agentDir), ""); r.err != nil {
		t.Fatalf("sandmux agent: %s", r)
	}
	for _, tc := range []struct{ name, proxy, why string }{
		{"agent", proxyCommand(deadURL, agentDir), "connection refused (is `sandmux server` listening there?)"},
		{"no-agent", proxyCommand("ws://"+silent.Addr, ""), "no answer yet"},
	} {
		cmd := sshd.Command(ctx, t, "ssh", tc.proxy, "sandbox", "true")
		// ssh takes an option's first value: this one must come before
		// the harness's own ConnectTimeout.
		cmd.Args = append([]string{cmd.Args[0], "-o", "ConnectTimeout=2"}, cmd.Args[1:]...)
		cmd.Env = childEnv()
		r := run(cmd, "")
		if r.exitCode() != 255 || !strings.Contains(r.stderr, "timed out during banner exchange") {
			t.Fatalf("%s: ssh with ConnectTimeout=2 to a server that never answers: want exit 255 and ssh's banner time-out\n%s", tc.name, r)
		}
		if !strings.Contains(r.stderr, "sandmux: ssh gave up after ") || !strings.Contains(r.stderr, tc.why) {
			t.Errorf("%s: stderr %q: want sandmux's line saying ssh gave up, and why (%q)", tc.name, r.stderr, tc.why)
		}
	}
}

// TestControlPersistShowsTheProxysLine: with ControlPersist set, ssh
// sends its ProxyCommand's stderr to /dev/null (so that a master left
// in the background does not write on the terminal later), and a proxy
// that failed to connect said nothing the user could see: only ssh's own
// "kex_exchange_identification: Connection closed by remote host". Its
// one line must reach ssh's stderr all the same, and only there: ssh run
// with its own stderr at /dev/null stays silent.
func TestControlPersistShowsTheProxysLine(t *testing.T) {
	t.Parallel()
	sshd := startSSHD(t)
	ctx := testContext(t, time.Minute)
	deadURL := fmt.Sprintf("ws://127.0.0.1:%d", testutil.FreePort(t))
	dir, err := os.MkdirTemp("", "smxcm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	persist := []string{"-o", "ControlMaster=auto", "-o", "ControlPath=" + dir + "/cm-%C", "-o", "ControlPersist=30"}
	refused := "connection refused (is `sandmux server` listening there?)\n"
	for _, tc := range []struct{ name, proxy, want string }{
		{"agent", proxyCommand(deadURL, newAgentDir(t), "--connect-timeout", "1s"), refused},
		{"no-agent", proxyCommand(deadURL, ""), refused},
		{"flag after the host", sandmuxBin + " proxy --url " + deadURL + " %h --no-agent", "and flags must come first: `sandmux proxy [flags] sandbox`\n"},
	} {
		cmd := sshd.Command(ctx, t, "ssh", tc.proxy, append(persist, "sandbox", "true")...)
		cmd.Env = childEnv()
		r := run(cmd, "")
		if r.exitCode() != 255 {
			t.Fatalf("%s: ssh through a proxy to a dead URL: want exit 255\n%s", tc.name, r)
		}
		if !strings.Contains(r.stderr, "sandmux: ") || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: ssh with ControlPersist: stderr %q, want the proxy's line ending %q", tc.name, r.stderr, tc.want)
		}
	}
}
