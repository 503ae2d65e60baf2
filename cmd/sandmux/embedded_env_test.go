package main

import (
	"flag"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/sandmux/sandmux/sshd"
)

// embeddedConfigFor is embeddedConfig for `sandmux server --ssh embedded
// --authorized-keys keys` with a scratch --state-dir.
func embeddedConfigFor(t *testing.T, keys string) (sshd.Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.String("max-startups", "10:30:100", "")
	fs.String("state-dir", t.TempDir(), "")
	fs.String("authorized-keys", keys, "")
	return embeddedConfig(cli.NewContext(cli.NewApp(), fs, nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
}

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
	cfg, err := embeddedConfigFor(t, "")
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

// The server's --token-file and --authorized-keys, quoted in a start
// command (--token-file '~/token'), are found under the home directory
// as the client's --token-file and the server's --state-dir are; they
// failed with "no such file" for a directory named ~.
func TestServerFilesTildeIsHome(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	if err := os.WriteFile(filepath.Join(home, "token"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := readToken("", false, "~/token"); tok != "s3cret" || err != nil {
		t.Errorf("--token-file ~/token: %q, %v", tok, err)
	}
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test\n"
	if err := os.WriteFile(filepath.Join(home, "keys"), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envAuthorizedKeys, "")
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.String("max-startups", "10:30:100", "")
	fs.String("state-dir", t.TempDir(), "")
	fs.String("authorized-keys", "~/keys", "")
	cfg, err := embeddedConfig(cli.NewContext(cli.NewApp(), fs, nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || cfg.AuthorizedKeysFile != filepath.Join(home, "keys") {
		t.Errorf("--authorized-keys ~/keys: file %q, %v", cfg.AuthorizedKeysFile, err)
	}
}
