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

// A second `sandmux agent --stop`, run while the first still waits for the
// agent to close its sessions, said "no agent was running". It says the
// agent is already stopping, waits for it to exit, and then says it
// stopped. The stopping agent is played by a hold of its lock.
func TestAgentStopWhileStopping(t *testing.T) {
	dir := t.TempDir()
	f, err := os.OpenFile(filepath.Join(dir, agent.StoppingName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		t.Fatal(err)
	}
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
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN) // the agent exits
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(errOut.String(), "\nsandmux: agent stopped\n") {
		t.Fatalf("agent --stop printed:\n%s", errOut)
	}
}
