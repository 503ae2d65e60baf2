//go:build !windows

package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandmux/sandmux/agent"
	"github.com/sandmux/sandmux/internal/testutil"
)

// A proxy whose ssh has exited and hung up returns as soon as the agent
// answers its detach, not when the server closes its side: until it
// exits it holds the stderr that ssh's caller may be reading to its end.
func TestWaitHandoffDetachesOnHangup(t *testing.T) {
	_, url := testutil.SandmuxServer(t, nil)

	dir, err := os.MkdirTemp("", "smxp") // short enough for a socket path
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	defer serveTestAgent(t, dir)()

	// ssh's ends stay open until the cleanup: the echo target never closes
	// its side while the proxy waits, so only the detach can end the wait
	// early.
	p := testutil.NewStdioPipes(t)
	noStart := func() error { return errors.New("the test runs its agent itself") }
	req := agent.OpenRequest{URL: url, Host: "box", ConnectTimeout: 5 * time.Second}
	conn, h, err := agent.OpenStdio(context.Background(), dir, noStart, req, p.In, p.Out)
	if err != nil {
		t.Fatal(err)
	}
	if conn != nil || h == nil {
		t.Fatalf("OpenStdio = %v, %v: want a hand-off", conn, h)
	}

	sigCtx, sigCancel := context.WithCancel(context.Background())
	sig := &signalWatch{ctx: sigCtx, cancel: sigCancel, done: make(chan struct{})}
	sig.hup.Store(true)
	sigCancel()
	start := time.Now()
	err = waitHandoff(sig, h)
	waited := time.Since(start)
	t.Logf("waitHandoff returned %v after %v", err, waited)
	if err != nil {
		t.Fatalf("waitHandoff: %v, want nil after a hangup", err)
	}
	if waited >= hangupGrace {
		t.Fatalf("waitHandoff took %v: it waited out hangupGrace instead of detaching", waited)
	}
}

// A closed stdout is not stdin: the proxy must not write the stream's
// bytes to stdin when run with stdout closed.
func TestSameFile(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	other, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	if !sameFile(r, r) || sameFile(r, other) {
		t.Fatal("a file is itself, and not another")
	}
	_ = other.Close()
	if sameFile(r, other) || sameFile(other, r) {
		t.Fatal("a closed file taken for an open one")
	}
	closed, err := os.CreateTemp(t.TempDir(), "g")
	if err != nil {
		t.Fatal(err)
	}
	_ = closed.Close()
	if !sameFile(other, closed) {
		t.Fatal("two files that cannot be looked at are not taken as one")
	}
}

// `sandmux proxy -v` through the agent says on stderr that the session is
// the agent's and where it logs; it printed nothing at all, so a user
// debugging with `ssh -v` saw no sandmux line.
func TestVerboseProxyNamesTheAgentLog(t *testing.T) {
	dir, err := os.MkdirTemp("", "smxv") // short enough for a socket path
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	defer serveTestAgent(t, dir)()
	// Port 1 refuses at once: the proxy gives up at its --connect-timeout.
	args := []string{"proxy", "--agent-dir", dir, "--url", "ws://127.0.0.1:1", "--connect-timeout", "1s"}
	_, stderr, err := runApp(t, append(append(args, "-v"), "abc")...)
	want := filepath.Join(dir, agent.LogName)
	if err == nil || !strings.Contains(stderr, "asking the agent for a stream") || !strings.Contains(stderr, want) {
		t.Errorf("proxy -v: err %v, stderr:\n%s\nwant a line naming %s", err, stderr, want)
	}
	_, stderr, _ = runApp(t, append(args, "abc")...)
	if stderr != "" {
		t.Errorf("proxy without -v wrote to stderr:\n%s", stderr)
	}
}
