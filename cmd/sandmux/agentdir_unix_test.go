//go:build !windows

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An XDG_RUNTIME_DIR or HOME that belongs to another user (`sudo -E`,
// `su` without `-`) is not where this user's agent directory goes: made
// there, it would lock that user out of their own agent (owned by
// another uid, and not theirs to remove).
func TestAgentDirIgnoresAnotherUsersDirs(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to give a directory to another user")
	}
	others := t.TempDir()
	runtime, home := filepath.Join(others, "run"), filepath.Join(others, "home")
	for _, d := range []string{runtime, home} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, 4242, 4242); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("XDG_RUNTIME_DIR", runtime)
	t.Setenv("HOME", home)
	dir := mustDefaultAgentDir(t)
	if strings.HasPrefix(dir, others) {
		t.Fatalf("agent directory %s is inside another user's directory", dir)
	}
}

// An XDG_RUNTIME_DIR that no longer exists (a tmux or screen session
// that outlived the login, whose runtime directory logind removed with
// the last session) is not made again: /run/user is the system's, so a
// user could not, and every proxy failed with "mkdir /run/user/UID:
// permission denied". The agent goes to ~/.cache/sandmux instead, as
// when the variable is unset.
func TestAgentDirSkipsAMissingRuntimeDir(t *testing.T) {
	base := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(base, "run", "1000"))
	t.Setenv("HOME", base)
	dir := mustDefaultAgentDir(t)
	if want := filepath.Join(base, ".cache", "sandmux"); dir != want {
		t.Fatalf("agent directory %s, want %s: the runtime directory is gone", dir, want)
	}
}

// mustDefaultAgentDir is the agent directory of a command given no
// --agent-dir, from the environment.
func mustDefaultAgentDir(t *testing.T) string {
	t.Helper()
	dir, err := defaultAgentDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
