package main

import (
	"encoding/json"
	"testing"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/server"
)

// A token read with its line end (SANDMUX_TOKEN="$(cat token.txt)" of a
// CRLF file keeps the CR) is the token: the server trims its
// --token-file the same way.
func TestTokenLineEndIsTrimmed(t *testing.T) {
	_, url := testutil.SandmuxServer(t, func(c *server.Config) { c.Token = "right" })
	out, _, _ := runApp(t, "doctor", "--json", "--probe", "0", "--timeout", "500ms", "--url", url, "--token", "right\r\n", "box")
	var rep struct {
		Steps []struct {
			Name, Status, Detail string
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("doctor --json printed %q: %v", out, err)
	}
	for _, s := range rep.Steps {
		if s.Name == "auth" {
			if s.Status != "pass" {
				t.Fatalf("auth step %s: %s", s.Status, s.Detail)
			}
			return
		}
	}
	t.Fatalf("no auth step in %s", out)
}
