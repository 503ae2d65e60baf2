//go:build !windows

package main

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/sandmux/sandmux/agent"
)

// `sandmux agent --foreground` while an agent runs, as README suggests
// for watching the agent's logs, says how to get there: stop the running
// one first. It said only that another agent was running.
func TestAgentForegroundWhileOneRuns(t *testing.T) {
	// The command tunes the runtime of a process that moves bytes; this
	// test process keeps its own.
	t.Setenv("GOMAXPROCS", strconv.Itoa(runtime.GOMAXPROCS(0)))
	t.Setenv("GOGC", "100")
	dir, err := os.MkdirTemp("", "smfg") // short: a socket path has a limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// An agent's socket, answering (as one that takes no run lock does).
	ln, err := net.Listen("unix", filepath.Join(dir, agent.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, _, err = runApp(t, "agent", "--foreground", "--agent-dir", dir)
	if !errors.Is(err, agent.ErrAlreadyRunning) || !strings.Contains(err.Error(), "sandmux agent --stop") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("agent --foreground beside a running agent: %v; want one line that says to stop it (`sandmux agent --stop`)", err)
	}
}
