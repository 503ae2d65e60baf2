package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/server"
)

// doctorAuth runs doctor against url with args and returns its auth
// step's status and detail.
func doctorAuth(t *testing.T, url string, args ...string) (string, string) {
	t.Helper()
	out, _, _ := runApp(t, append(append([]string{"doctor", "--json", "--probe", "0", "--timeout", "1s", "--url", url}, args...), "box")...)
	var rep struct {
		Steps []struct {
			Name, Status, Detail string
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("doctor --json printed %q: %v", out, err)
	}
	for _, s := range rep.Steps {
		if s.Name == "auth" || s.Status == "fail" {
			return s.Status, s.Detail
		}
	}
	t.Fatalf("no auth step in %s", out)
	return "", ""
}

// A token read with its line end (SANDMUX_TOKEN="$(cat token.txt)" of a
// CRLF file keeps the CR) is the token: the server trims its
// --token-file the same way.
func TestTokenLineEndIsTrimmed(t *testing.T) {
	_, url := testutil.SandmuxServer(t, func(c *server.Config) { c.Token = "right" })
	if st, detail := doctorAuth(t, url, "--token", "right\r\n"); st != "pass" {
		t.Fatalf("auth step %s: %s", st, detail)
	}
}

// Sandboxes of two providers, each with its token: each ssh config
// block names its own --token-file, which wins over the SANDMUX_TOKEN
// the other provider's blocks use.
func TestTokenFile(t *testing.T) {
	_, url := testutil.SandmuxServer(t, func(c *server.Config) { c.Token = "right" })
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("right\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, detail := doctorAuth(t, url, "--token-file", file); st != "pass" {
		t.Fatalf("--token-file: auth step %s: %s", st, detail)
	}
	// Quoted in a ProxyCommand, ~ reaches sandmux as is.
	t.Setenv("HOME", dir)
	if st, detail := doctorAuth(t, url, "--token-file", "~/token"); st != "pass" {
		t.Fatalf("--token-file ~/token: auth step %s: %s", st, detail)
	}
	t.Setenv("SANDMUX_TOKEN", "the other provider's")
	if st, detail := doctorAuth(t, url, "--token-file", file); st != "pass" {
		t.Fatalf("--token-file with SANDMUX_TOKEN set: auth step %s: %s", st, detail)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--token", "x", "--token-file", file}, "both --token and --token-file are set; use one"},
		{[]string{"--token-file", empty}, "--token-file " + empty + " is empty"},
		{[]string{"--token-file", filepath.Join(dir, "missing")}, "--token-file " + filepath.Join(dir, "missing") + " cannot be read: no such file or directory (check the path and the file's permissions)"},
	} {
		_, _, err := runApp(t, append(append([]string{"proxy", "--no-agent", "--url", url}, tc.args...), "box")...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("proxy %q: %v, want %q", tc.args, err, tc.want)
		}
	}
}
