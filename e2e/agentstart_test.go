//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAgentThatCannotStartSaysWhy: an agent that cannot open its log
// fails the proxy at once with its reason, in one line that says what to
// do, as README says. The line read "start the sandmux agent: exit
// status 1: open log: ...", the starter's exit status between the user
// and the reason, and nothing to do.
func TestAgentThatCannotStartSaysWhy(t *testing.T) {
	t.Parallel()
	dir := newAgentDir(t)
	if err := os.MkdirAll(filepath.Join(dir, "agent.log"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, time.Minute)
	r := run(sandmux(ctx, nil, "proxy", "--agent-dir", dir, "--url", "ws://127.0.0.1:1", "box"), "")
	want := "sandmux: the sandmux agent could not start: open log: open " + filepath.Join(dir, "agent.log") +
		": is a directory (correct that, or use --no-agent)\n"
	if r.exitCode() != 1 || r.stderr != want || r.dur > 10*time.Second {
		t.Fatalf("proxy whose agent cannot open its log: want exit 1 at once with\n%q\n%s", want, r)
	}
}
