package agent

import (
	"fmt"
	"os"
	"path/filepath"
)

// DefaultDir picks the per-user directory: $XDG_RUNTIME_DIR/sandmux when
// the runtime dir is set (a tmpfs only the user can enter), else
// ~/.cache/sandmux. The caller passes the environment in; this package
// reads none.
func DefaultDir(xdgRuntimeDir, home string) string {
	if xdgRuntimeDir != "" {
		return filepath.Join(xdgRuntimeDir, "sandmux")
	}
	return filepath.Join(home, ".cache", "sandmux")
}

// EnsureDir creates dir 0700 if missing and refuses one that another user
// owns, since the socket inside carries the user's sessions; one that
// others can enter is made private if it is empty, and refused otherwise.
func EnsureDir(dir string) error {
	if n := len(SocketPath(dir)); n > maxSocketPath {
		return fmt.Errorf("agent directory %s is too long: its socket path would be %d bytes, over the %d a Unix socket allows; %s", dir, n, maxSocketPath, fixDir)
	}
	if err := os.MkdirAll(dir, DefaultMode); err != nil {
		return fmt.Errorf("create agent directory: %w; %s", err, fixDir)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("agent directory: %w; %s", err, fixDir)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		// Refused, as whoever can change the link could point it elsewhere.
		return fmt.Errorf("%w: %s is a symbolic link: %s", ErrUnsafeDir, dir, fixLink(dir))
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory; %s", ErrUnsafeDir, dir, fixDir)
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Getuid() {
		return fmt.Errorf("%w: %s is owned by uid %d, not %d; %s", ErrUnsafeDir, dir, uid, os.Getuid(), fixDir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		// Made private only while it holds nothing: a directory of the
		// user's with files in it (a source tree, a home) is not the
		// agent's to change.
		if entries, err := os.ReadDir(dir); err != nil || len(entries) > 0 {
			return fmt.Errorf("%w: %s is mode %#o (other users can enter it) and holds files: if it is sandmux's own (agent.log and the like), run chmod 700 %s; else %s", ErrUnsafeDir, dir, fi.Mode().Perm(), dir, fixDir)
		}
		if err := os.Chmod(dir, DefaultMode); err != nil {
			return fmt.Errorf("%w: %s is mode %#o and cannot be fixed: %w; %s", ErrUnsafeDir, dir, fi.Mode().Perm(), err, fixDir)
		}
	}
	return nil
}

// fixLink is what to do about an agent directory that is a symbolic link:
// name the directory itself, which is what the user meant. "give the
// directory it points to; set --agent-dir to a short private directory
// of yours, or use --no-agent" offered two fixes, the first saying
// neither where to give it nor what it was.
func fixLink(dir string) string {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		return fmt.Sprintf("set --agent-dir to the directory itself, %s, or use --no-agent", real)
	}
	return "set --agent-dir to the directory itself, not a link to it, or use --no-agent"
}

// fixDir is what to do about an unusable agent directory.
const fixDir = "set --agent-dir to a short private directory of yours, or use --no-agent"

// maxSocketPath is the longest Unix socket path every supported system
// takes (sun_path is 104 bytes on macOS and FreeBSD, 108 on Linux, with
// its terminating NUL).
const maxSocketPath = 103
