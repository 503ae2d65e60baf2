package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/sandmux/sandmux/client"
)

// --ca '~/ca.pem', quoted in a ProxyCommand, is the home directory's
// file for the request the agent gets as for the proxy's own check: the
// proxy expanded it for its TLS check, then read the unexpanded path for
// the agent and failed with "read --ca: open ~/ca.pem".
func TestAgentRequestCATilde(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home) // Windows's home
	const pem = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"
	if err := os.WriteFile(filepath.Join(home, "ca.pem"), []byte(pem), 0o600); err != nil {
		t.Fatal(err)
	}
	set := flag.NewFlagSet("proxy", flag.ContinueOnError)
	set.String("ca", "", "")
	if err := set.Parse([]string{"--ca", "~/ca.pem"}); err != nil {
		t.Fatal(err)
	}
	req, err := agentRequest(cli.NewContext(nil, set, nil), client.Config{}, "box")
	if err != nil {
		t.Fatalf("agentRequest with --ca ~/ca.pem: %v", err)
	}
	if req.CAPEM != pem {
		t.Errorf("CAPEM %q, want the file's", req.CAPEM)
	}
}

// A --ca that cannot be read is one line naming the flag and the path,
// with what to check, as a --token-file's: it said "read --ca: open
// PATH: no such file or directory".
func TestCAFileUnreadable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "ca.pem")
	want := "--ca " + missing + " cannot be read: no such file or directory (check the path and the file's permissions)"
	for _, args := range [][]string{
		{"proxy", "--no-agent", "--ca", missing, "--url", "wss://127.0.0.1:1", "box"},
		{"proxy", "--agent-dir", t.TempDir(), "--ca", missing, "--url", "wss://127.0.0.1:1", "box"},
	} {
		if _, _, err := runApp(t, args...); err == nil || err.Error() != want {
			t.Errorf("%q: %v\nwant %q", args, err, want)
		}
	}
}
