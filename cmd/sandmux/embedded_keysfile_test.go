package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An authorized keys file that is a directory (--authorized-keys /tmp, or
// a ~/.ssh/authorized_keys made with mkdir) stops the server with one line
// naming the flag and what the file must be; it said "read authorized
// keys: read /tmp: is a directory".
func TestEmbeddedKeysFileIsADirectory(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv(envAuthorizedKeys, "")
	dflt := filepath.Join(home, ".ssh", "authorized_keys")
	if err := os.MkdirAll(dflt, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for flagValue, want := range map[string]string{
		dir: "--authorized-keys " + dir + " is a directory: set --authorized-keys to a file of public keys",
		"":  dflt + " (the default --authorized-keys) is a directory: set --authorized-keys to a file of public keys",
	} {
		_, err := embeddedConfigFor(t, flagValue)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("--authorized-keys %q, a directory: %v, want %q", flagValue, err, want)
		}
	}
}
