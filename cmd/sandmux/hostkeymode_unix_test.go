//go:build unix

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

	"github.com/sandmux/sandmux/server"
	"github.com/sandmux/sandmux/sshd"
)

// `sandmux server --ssh embedded` with a host key that other users can
// read (one copied into the state directory with the usual umask) fails
// at start with one line saying the fix, as OpenSSH's sshd refuses such
// a key; it used to serve with it. --print-host-key refuses it too.
func TestServerRefusesHostKeyOpenToOthers(t *testing.T) {
	dir := t.TempDir()
	k, err := sshd.LoadHostKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(k.Path, 0o644); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(t.TempDir(), "authorized_keys")
	if err := os.WriteFile(keys, []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := "chmod 600 " + k.Path
	oneLine := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line saying %q", what, err, want)
		}
	}

	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.String("ssh", "embedded", "")
	fs.String("max-startups", "10:30:100", "")
	fs.String("state-dir", dir, "")
	fs.String("authorized-keys", keys, "")
	fs.String("target", "", "")
	cfg := server.DefaultConfig()
	emb, err := startEmbedded(cli.NewContext(cli.NewApp(), fs, nil), slog.New(slog.NewTextHandler(io.Discard, nil)), &cfg)
	emb.Close()
	oneLine("starting the embedded server", err)

	out, _, err := runApp(t, "server", "--print-host-key", "--state-dir", dir)
	oneLine("--print-host-key", err)
	if out != "" {
		t.Errorf("--print-host-key printed %q", out)
	}
}
