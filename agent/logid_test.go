package agent

import (
	"log/slog"
	"regexp"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
)

// The session= of agent.log carries nothing about the session's token:
// two agents given the same URL and token name their sessions apart. It
// was the first 8 hex digits of an unsalted SHA-256 over the URL and the
// token, the same in both, which let a log pasted into a bug report test
// guesses at a weak token offline.
func TestLogSessionIDSaysNothingOfTheToken(t *testing.T) {
	_, url := testutil.SandmuxServer(t, nil)
	req := OpenRequest{URL: url, Token: "hunter2", Host: "box", ConnectTimeout: 5 * time.Second}
	id := regexp.MustCompile(`session=(\w+)`)
	var ids []string
	for range 2 {
		dir := shortDir(t)
		logs := &testutil.Buffer{}
		runAgent(t, dir, func(c *Config) {
			c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		})
		c := echoOnce(t, dir, req)
		_ = c.Close()
		m := id.FindStringSubmatch(logs.String())
		if m == nil {
			t.Fatalf("no session= in the agent's log:\n%s", logs.String())
		}
		ids = append(ids, m[1])
	}
	if ids[0] == ids[1] {
		t.Fatalf("two agents named the session of one URL and token alike (session=%s): it is a function of the token", ids[0])
	}
}
