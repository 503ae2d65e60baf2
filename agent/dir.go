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
// owns or can enter, since the socket inside carries the user's sessions.
func EnsureDir(dir string) error {
	if err := os.MkdirAll(dir, DefaultMode); err != nil {
		return fmt.Errorf("create agent directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("agent directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrUnsafeDir, dir)
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Getuid() {
		return fmt.Errorf("%w: %s is owned by uid %d, not %d", ErrUnsafeDir, dir, uid, os.Getuid())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, DefaultMode); err != nil {
			return fmt.Errorf("%w: %s is mode %v and cannot be fixed: %w", ErrUnsafeDir, dir, fi.Mode().Perm(), err)
		}
	}
	return nil
}
