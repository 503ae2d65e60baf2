package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// stableExe is the path `ssh-config` writes for this binary, exe being
// os.Executable's answer: the path it was run by (arg0, looked up in
// PATH as the shell did) when that names this very file, else exe with
// its links resolved. On Linux exe has every symlink resolved already,
// and a package manager's link is what survives an upgrade: Homebrew's
// /opt/homebrew/bin/sandmux points at ../Cellar/sandmux/1.2.0/bin/sandmux,
// which `brew upgrade` deletes, leaving every ssh with "not found"; the
// same goes for a Nix profile, mise or asdf, and a `go install` in a
// versioned GOBIN.
func stableExe(arg0, exe string) string {
	resolved := exe
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		resolved = p
	}
	p := arg0
	if !strings.ContainsRune(arg0, filepath.Separator) && !strings.ContainsRune(arg0, '/') {
		// Relative PATH entries (exec.ErrDot) are not taken: the
		// block is used from whatever directory ssh runs in.
		found, err := exec.LookPath(arg0)
		if err != nil {
			return resolved
		}
		p = found
	}
	p, err := filepath.Abs(p)
	if err != nil {
		return resolved
	}
	got, err := os.Stat(p)
	if err != nil {
		return resolved
	}
	want, err := os.Stat(resolved)
	if err != nil || !os.SameFile(got, want) {
		return resolved
	}
	return p
}
