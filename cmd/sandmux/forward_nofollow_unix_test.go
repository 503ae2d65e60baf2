//go:build !windows

package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The background forward's state file was written through its temporary
// name with os.WriteFile, which follows a symbolic link put there: a user
// who could write to the directory had the state's JSON written over any
// file of the forward's owner. The link is replaced, its target untouched.
func TestForwardStateDoesNotFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st := &forwardStateFile{path: filepath.Join(dir, "1.json"), log: filepath.Join(dir, "1.log")}
	if err := os.Symlink(victim, st.path+".tmp"); err != nil {
		t.Fatal(err)
	}
	if err := st.write("abc", "wss://x", nil, false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep\n" {
		t.Fatalf("the link's target was written: %q", b)
	}
	if fi, err := os.Lstat(st.path); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("state file: %v, %v", fi, err)
	}
}
