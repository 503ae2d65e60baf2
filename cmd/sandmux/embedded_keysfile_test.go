package main

import (
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
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
		fs := flag.NewFlagSet("server", flag.ContinueOnError)
		fs.String("max-startups", "10:30:100", "")
		fs.String("state-dir", t.TempDir(), "")
		fs.String("authorized-keys", flagValue, "")
		_, err := embeddedConfig(cli.NewContext(cli.NewApp(), fs, nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("--authorized-keys %q, a directory: %v, want %q", flagValue, err, want)
		}
	}
}
