//go:build !windows

package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The agent's files are opened without following a symbolic link. A
// user who can write the agent directory's parent (an --agent-dir in a
// shared, non-sticky directory) can swap the directory for one of theirs
// after EnsureDir checked it, with agent.log a link to ~/.bashrc: the
// agent appended its log lines there, with the user's rights, and its
// locks created files wherever the links pointed.
func TestAgentFilesDoNotFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "bashrc")
	if err := os.WriteFile(victim, []byte("original\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{LogName, RunLockName, StoppingName} {
		if err := os.Symlink(victim, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	lf, err := OpenLogFile(filepath.Join(dir, LogName), 1<<20)
	if err == nil {
		_, _ = lf.Write([]byte("agent log line\n"))
		_ = lf.Close()
		t.Error("OpenLogFile followed a symbolic link")
	} else if !strings.Contains(err.Error(), "is a symbolic link, which the agent does not follow: remove it") {
		t.Errorf("OpenLogFile on a symbolic link: %v; want it said", err)
	}
	if unlock, err := lock(context.Background(), filepath.Join(dir, RunLockName)); err == nil {
		unlock()
		t.Error("lock followed a symbolic link")
	}
	if release, err := holdStopping(filepath.Join(dir, StoppingName)); err == nil {
		release()
		t.Error("holdStopping followed a symbolic link")
	}
	if stoppingNow(filepath.Join(dir, StoppingName)) {
		t.Error("stoppingNow followed a symbolic link")
	}
	if b, _ := os.ReadFile(victim); string(b) != "original\n" {
		t.Errorf("the file a link pointed to now holds %q", b)
	}
}

// O_NOFOLLOW stops a symbolic link, not a hard link: on a system that
// lets anyone link to any file (macOS; Linux without
// fs.protected_hardlinks), such a user's directory could hold agent.log
// as a hard link to ~/.bashrc, and the agent appended its log lines to
// it. A log file with another link is refused, untouched.
func TestAgentLogDoesNotWriteThroughAHardLink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "bashrc")
	if err := os.WriteFile(victim, []byte("original\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, LogName)
	if err := os.Link(victim, path); err != nil {
		t.Fatal(err)
	}
	lf, err := OpenLogFile(path, 1<<20)
	if err == nil {
		_, _ = lf.Write([]byte("agent log line\n"))
		_ = lf.Close()
		t.Error("OpenLogFile opened a file with another hard link")
	} else if !strings.Contains(err.Error(), "has 2 hard links, so it is another file too, which the agent does not write to: remove it") {
		t.Errorf("OpenLogFile on a hard link: %v; want it said", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "original\n" {
		t.Errorf("the linked file now holds %q", b)
	}
}
