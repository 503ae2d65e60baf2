package main

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestTildePath(t *testing.T) {
	home := func() (string, error) { return "/home/me", nil }
	for in, want := range map[string]string{
		"~":          "/home/me",
		"~/.sandmux": "/home/me/.sandmux",
		"/abs/~/x":   "/abs/~/x",
		"rel":        "rel",
	} {
		if got, err := tildePath("agent-dir", in, home); err != nil || got != filepath.FromSlash(want) {
			t.Errorf("tildePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := tildePath("agent-dir", "~bob/x", home); err == nil || !strings.Contains(err.Error(), "give the absolute path") {
		t.Errorf("~bob/x: %v, want it refused", err)
	}
	noHome := func() (string, error) { return "", errors.New("$HOME is not defined") }
	if _, err := tildePath("state-dir", "~/x", noHome); err == nil || !strings.Contains(err.Error(), "no home directory for ~") {
		t.Errorf("~/x without a home: %v", err)
	}
}

// export SANDMUX_AGENT_DIR="~/.sandmux" (the quotes keep the shell from
// expanding ~) means the home directory's, where the agent runs, not a
// directory named ~ in whatever directory ssh runs in.
func TestAgentDirTildeIsHome(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no agent on Windows")
	}
	home, err := os.MkdirTemp("", "smxt") // short enough for a socket path
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	dir := filepath.Join(home, ".sandmux")
	defer serveTestAgent(t, dir)()
	t.Setenv("HOME", home)
	t.Setenv("SANDMUX_AGENT_DIR", "~/.sandmux")
	t.Chdir(t.TempDir())
	out, _, err := runApp(t, "status")
	if err != nil || !strings.HasPrefix(out, "agent pid ") {
		t.Fatalf("status with SANDMUX_AGENT_DIR=~/.sandmux: %v\n%s\nwant the agent in %s", err, out, dir)
	}
}
