//go:build !windows

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandmux/sandmux/agent"
	"github.com/sandmux/sandmux/internal/testutil"
)

// holdStoppingLock plays an agent that has begun to stop: it holds the
// agent's stopping lock in dir until the returned function is called.
func holdStoppingLock(t *testing.T, dir string) (release func()) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, agent.StoppingName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN) }
}

// A second `sandmux agent --stop`, run while the first still waits for the
// agent to close its sessions, said "no agent was running". It says the
// agent is already stopping, waits for it to exit, and then says it
// stopped. The stopping agent is played by a hold of its lock.
func TestAgentStopWhileStopping(t *testing.T) {
	dir := t.TempDir()
	release := holdStoppingLock(t, dir)
	app := newApp()
	errOut := &testutil.Buffer{}
	app.Writer, app.ErrWriter = &testutil.Buffer{}, errOut
	done := make(chan error, 1)
	go func() { done <- app.Run([]string{"sandmux", "agent", "--stop", "--agent-dir", dir}) }()
	testutil.WaitFor(t, 5*time.Second, "the line that the agent is already stopping", func() bool {
		return strings.Contains(errOut.String(), "sandmux: the agent is already stopping (closing its sessions); waiting for it\n")
	})
	select {
	case err := <-done:
		t.Fatalf("agent --stop returned while the agent was still stopping: %v\n%s", err, errOut)
	default:
	}
	release() // the agent exits
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(errOut.String(), "\nsandmux: agent stopped\n") {
		t.Fatalf("agent --stop printed:\n%s", errOut)
	}
}

// `sandmux status` while the agent closes its sessions (their ssh still
// open) said "no agent running": it says the agent is stopping, and
// --json says so too.
func TestStatusWhileStopping(t *testing.T) {
	dir := t.TempDir()
	release := holdStoppingLock(t, dir)
	out, _, err := runApp(t, "status", "--agent-dir", dir)
	// The command to wait with names the directory: alone, it would
	// wait for the default directory's agent.
	if err != nil || !strings.HasPrefix(out, "the agent is stopping: ") || !strings.Contains(out, "(`sandmux agent --stop --agent-dir "+dir+"` waits for it;") {
		t.Fatalf("status while stopping: %v\n%s", err, out)
	}
	out, _, err = runApp(t, "status", "--json", "--agent-dir", dir)
	if err != nil || !strings.Contains(out, `"running":false,"stopping":true`) {
		t.Fatalf("status --json while stopping: %v\n%s", err, out)
	}
	release()
	out, _, err = runApp(t, "status", "--agent-dir", dir)
	if err != nil || !strings.HasPrefix(out, "no agent running") {
		t.Fatalf("status once stopped: %v\n%s", err, out)
	}
}
