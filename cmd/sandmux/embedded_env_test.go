package main

import (
	"flag"
	"io"
	"log/slog"
	"os"
	"os/user"
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
)

// A server started with a bare environment (`env -i`: no HOME, no USER)
// gives sessions a home directory and USER, LOGNAME and HOME, from the
// user database, as sshd does; a session ran in the server's directory
// with none of them.
func TestEmbeddedConfigWithoutHome(t *testing.T) {
	me, err := user.Current()
	if err != nil || me.HomeDir == "" {
		t.Skipf("no user database entry for this user: %v", err)
	}
	t.Setenv("HOME", "")
	t.Setenv("USER", "")
	t.Setenv("LOGNAME", "")
	t.Setenv("SHELL", "")
	t.Setenv(envAuthorizedKeys, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test")
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.String("max-startups", "10:30:100", "")
	fs.String("state-dir", t.TempDir(), "")
	fs.String("authorized-keys", "", "")
	cfg, err := embeddedConfig(cli.NewContext(cli.NewApp(), fs, nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dir != me.HomeDir {
		t.Errorf("sessions start in %q, want the home directory %q", cfg.Dir, me.HomeDir)
	}
	if sh, ok := passwdShell(passwdFile, os.Getuid()); ok && usableShell(sh) && cfg.Shell != sh {
		t.Errorf("sessions run %q, want the user database's shell %q", cfg.Shell, sh)
	}
	for _, want := range []string{"USER=" + me.Username, "LOGNAME=" + me.Username, "HOME=" + me.HomeDir} {
		if !slices.Contains(cfg.Env, want) {
			t.Errorf("session environment lacks %s", want)
		}
	}
}

// `sandmux server --print-host-key` looks where the server keeps the key:
// with a bare environment the server takes the home directory from the
// user database, and --print-host-key failed ("no home directory for the
// host key") instead of printing the key the server uses.
func TestHostKeyDirWithoutHome(t *testing.T) {
	me, err := user.Current()
	if err != nil || me.HomeDir == "" {
		t.Skipf("no user database entry for this user: %v", err)
	}
	if _, ok := userHome(); !ok {
		t.Skipf("the user database's home %s is not this user's directory", me.HomeDir)
	}
	t.Setenv("HOME", "")
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv(envAuthorizedKeys, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test")
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.String("max-startups", "10:30:100", "")
	fs.String("state-dir", "", "")
	fs.String("authorized-keys", "", "")
	c := cli.NewContext(cli.NewApp(), fs, nil)
	cfg, err := embeddedConfig(c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := hostKeyDir(c)
	if err != nil || dir != cfg.StateDir {
		t.Fatalf("--print-host-key looks in %q (%v); the server keeps its key in %q", dir, err, cfg.StateDir)
	}
}
