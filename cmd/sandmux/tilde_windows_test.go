package main

import (
	"path/filepath"
	"testing"
)

// cmd.exe and Windows PowerShell pass ~ on unexpanded, and a Windows path is
// written with backslashes: ~\token was refused as ~USER.
func TestTildeBackslashWindows(t *testing.T) {
	home := func() (string, error) { return `C:\Users\me`, nil }
	got, err := tildePath("token-file", `~\.sandmux\token`, home)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(`C:\Users\me`, `.sandmux\token`); got != want {
		t.Fatalf("tildePath = %q, want %q", got, want)
	}
}
