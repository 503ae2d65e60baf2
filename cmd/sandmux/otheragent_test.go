package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sandmux/sandmux/agent"
)

// A shell without the XDG_RUNTIME_DIR of the shell that started the
// agent (su, sudo -u -i, cron, a tmux server) looks in another default
// directory: status and agent --stop say where this user's agent runs,
// rather than that none does.
func TestStatusNamesTheAgentOfAnotherDefaultDir(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no agent on Windows")
	}
	base, err := os.MkdirTemp("", "smxo") // short enough for a socket path
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	home, xdg := filepath.Join(base, "h"), filepath.Join(base, "x")
	for _, d := range []string{home, xdg} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// The agent a shell without XDG_RUNTIME_DIR started.
	dir := agent.DefaultDir("", home)
	defer serveTestAgent(t, dir)()

	t.Setenv("HOME", home)
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	t.Setenv("SANDMUX_AGENT_DIR", "")
	out, _, err := runApp(t, "status")
	if err != nil || !strings.Contains(out, "but one runs in "+dir) || !strings.Contains(out, "`sandmux status --agent-dir "+dir+"`") {
		t.Fatalf("status: %v\n%s\nwant it to name the agent in %s", err, out, dir)
	}
	_, errOut, err := runApp(t, "agent", "--stop")
	if err != nil || !strings.Contains(errOut, "`sandmux agent --stop --agent-dir "+dir+"` stops it") {
		t.Fatalf("agent --stop: %v\n%s\nwant it to name the agent in %s", err, errOut, dir)
	}
	if _, err := agent.GetStatus(context.Background(), dir); err != nil {
		t.Fatalf("agent --stop in another directory stopped this one: %v", err)
	}
}
