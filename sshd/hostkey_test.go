//go:build unix

package sshd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A host key that other users can read is refused, as OpenSSH's sshd
// refuses one ("Permissions 0644 for ... are too open"), with a line
// that says the fix: anyone who can read it can impersonate the server.
// The key was taken as it was, so a key copied in with the usual umask
// (0644) served logins.
func TestHostKeyOpenToOthersRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := CheckHostKey(dir); err != nil {
		t.Fatalf("CheckHostKey with no key yet: %v", err)
	}
	k, err := LoadHostKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(k.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated key: %v, mode %v, want 0600", err, fi.Mode().Perm())
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620} {
		if err := os.Chmod(k.Path, mode); err != nil {
			t.Fatal(err)
		}
		for name, check := range map[string]func() error{
			"LoadHostKey":  func() error { _, err := LoadHostKey(dir); return err },
			"CheckHostKey": func() error { return CheckHostKey(dir) },
		} {
			err := check()
			if !errors.Is(err, ErrHostKeyTooOpen) {
				t.Fatalf("%s with a key of mode %04o: %v, want ErrHostKeyTooOpen", name, mode, err)
			}
			if msg := err.Error(); !strings.Contains(msg, "chmod 600 "+k.Path) || strings.Contains(msg, "\n") {
				t.Errorf("%s: %q, want one line saying to run chmod 600 %s", name, msg, k.Path)
			}
		}
	}
	if err := os.Chmod(k.Path, 0o400); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadHostKey(dir); err != nil || got.Fingerprint() != k.Fingerprint() {
		t.Fatalf("LoadHostKey with a key of mode 0400: %v", err)
	}
	if err := CheckHostKey(dir); err != nil {
		t.Errorf("CheckHostKey with a key of mode 0400: %v", err)
	}
}

// The embedded server refuses logins while its key is open to others,
// and serves again once it is fixed (the key is read at the first login
// that needs it).
func TestHostKeyOpenToOthersRefusesLogins(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	cfg := testConfig(t, key)
	k, err := LoadHostKey(cfg.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(k.Path, 0o644); err != nil {
		t.Fatal(err)
	}
	f := startWith(t, cfg, key)
	if c, err := f.dial(t); err == nil {
		c.Close()
		t.Fatal("login succeeded with a host key of mode 0644")
	}
	if err := os.Chmod(filepath.Join(cfg.StateDir, HostKeyFile), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := f.dial(t)
	if err != nil {
		t.Fatalf("login once the key is 0600: %v", err)
	}
	c.Close()
}

// A host key path that is a directory is refused in one line that says to
// remove it; it said "read host key: read PATH: is a directory".
func TestHostKeyIsADirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, HostKeyFile)
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	want := "host key " + path + " is a directory: remove it to have a new key generated there"
	for name, check := range map[string]func() error{
		"LoadHostKey":  func() error { _, err := LoadHostKey(dir); return err },
		"CheckHostKey": func() error { return CheckHostKey(dir) },
	} {
		if err := check(); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
}
