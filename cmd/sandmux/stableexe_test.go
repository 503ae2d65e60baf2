package main

import (
	"os"
	"path/filepath"
	"testing"
)

// ssh-config writes the path a package manager's link gives, not the
// versioned file behind it that the next upgrade deletes.
func TestStableExeKeepsTheLinkItWasRunBy(t *testing.T) {
	// Resolved, so that a temporary directory behind a link (macOS's
	// /var) does not change the expected paths.
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(dir, "Cellar", "sandmux", "1.2.0", "bin", "sandmux")
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(bin, "sandmux")
	if err := os.Symlink("../Cellar/sandmux/1.2.0/bin/sandmux", link); err != nil {
		t.Skipf("no symlinks here: %v", err)
	}
	other := filepath.Join(bin, "other")
	if err := os.WriteFile(other, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	for _, tc := range []struct{ arg0, want string }{
		{"sandmux", link}, // found in PATH, as the shell ran it
		{link, link},
		{real, real},
		{"other", real},   // not this binary: what the kernel says
		{"missing", real}, // not in PATH
	} {
		if got := stableExe(tc.arg0, real); got != tc.want {
			t.Errorf("stableExe(%q) = %q, want %q", tc.arg0, got, tc.want)
		}
	}
	t.Chdir(bin)
	if got := stableExe("./sandmux", real); got != link {
		t.Errorf("stableExe(./sandmux) = %q, want the absolute %q", got, link)
	}
}
