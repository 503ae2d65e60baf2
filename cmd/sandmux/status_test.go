package main

import (
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sandmux/sandmux/agent"
)

// Proxies held up by a session that is not connected show beside its
// open streams.
func TestPrintStatusShowsWaitingProxies(t *testing.T) {
	st := agent.Status{Started: time.Now(), Sessions: []agent.SessionStatus{
		{URL: "wss://8081-a.e2b.app", State: agent.StateReconnecting, Reason: "wss://8081-a.e2b.app: dial failed", OpenStreams: 1, Waiting: 2},
		{URL: "wss://8081-b.e2b.app", State: agent.StateConnected, OpenStreams: 3},
	}}
	var b strings.Builder
	if err := printStatus(&b, st, "sandmux agent --stop"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	if len(lines) < 5 || !strings.Contains(lines[3], "1 (+2 waiting)") || strings.Contains(lines[4], "waiting") {
		t.Fatalf("status:\n%s\nwant the first session's streams as \"1 (+2 waiting)\" and no waiting on the second", b.String())
	}
	// The reason is a line of its own under the table, not a cell, and
	// names the URL once.
	if strings.Contains(lines[3], "dial failed") || !strings.Contains(b.String(), "\nwss://8081-a.e2b.app: reconnecting: dial failed\n") {
		t.Fatalf("status:\n%s\nwant the reason on its own line under the table", b.String())
	}
}

// An idle entry (its session closed for want of use) keeps the resumes
// its sessions made beside the bytes they replayed, not a "-" that says
// none could resume.
func TestPrintStatusIdleKeepsResumes(t *testing.T) {
	st := agent.Status{Started: time.Now(), Sessions: []agent.SessionStatus{
		{URL: "wss://8081-a.e2b.app", State: agent.StateIdle, Resumes: 2, Replayed: 3 << 10},
		{URL: "wss://8081-b.e2b.app", State: agent.StateConnected},
	}}
	var b strings.Builder
	if err := printStatus(&b, st, "sandmux agent --stop"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	if len(lines) < 5 || !strings.Contains(lines[3], " 2 ") || !strings.Contains(lines[3], "3.0 KiB") || !strings.Contains(lines[4], " - ") {
		t.Fatalf("status:\n%s\nwant the idle row's 2 resumes beside its 3.0 KiB replayed, and - for a session that is not resumable", b.String())
	}
}

// After an upgrade, status says that the running agent is still the old
// binary and how to move to this one; nothing when they match.
func TestPrintStatusNotesAnAgentOfAnotherVersion(t *testing.T) {
	var b strings.Builder
	if err := printStatus(&b, agent.Status{Started: time.Now(), Version: "old123"}, "sandmux agent --stop --agent-dir /x"); err != nil {
		t.Fatal(err)
	}
	if want := "this sandmux is version " + version + ", the agent version old123, which it keeps until it exits: `sandmux agent --stop --agent-dir /x`"; !strings.Contains(b.String(), want) {
		t.Fatalf("status:\n%s\nwant %q", b.String(), want)
	}
	b.Reset()
	if err := printStatus(&b, agent.Status{Started: time.Now(), Version: version}, "sandmux agent --stop"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "this sandmux is") {
		t.Fatalf("status of an agent of this version:\n%s", b.String())
	}
}

// Two sessions to one server (one proxy's --no-resume, another's token)
// are told apart by what sets them apart; a URL of its own shows alone.
func TestPrintStatusTellsSessionsToOneURLApart(t *testing.T) {
	st := agent.Status{Started: time.Now(), Sessions: []agent.SessionStatus{
		{URL: "wss://8081-a.e2b.app", State: agent.StateConnected},
		{URL: "wss://8081-a.e2b.app", State: agent.StateConnected, Options: []string{"no resume"}},
		{URL: "wss://8081-a.e2b.app", State: agent.StateConnected, Options: []string{"token", "header X-A"}},
		{URL: "wss://8081-b.e2b.app", State: agent.StateConnected, Options: []string{"token"}},
	}}
	var b strings.Builder
	if err := printStatus(&b, st, "sandmux agent --stop"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nwss://8081-a.e2b.app (defaults) ", "\nwss://8081-a.e2b.app (no resume) ", "\nwss://8081-a.e2b.app (token, header X-A) ", "\nwss://8081-b.e2b.app "} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
}

// Two sessions to one server that differ only in a value status never
// shows (a wrong token and the right one) are numbered, and the reason
// line under the table names the row it belongs to, not only the URL
// that both rows share.
func TestPrintStatusNumbersSessionsThatReadTheSame(t *testing.T) {
	st := agent.Status{Started: time.Now(), Sessions: []agent.SessionStatus{
		{URL: "ws://127.0.0.1:9", State: agent.StateFailed, Reason: "ws://127.0.0.1:9: 401 Unauthorized", Options: []string{"token"}},
		{URL: "ws://127.0.0.1:9", State: agent.StateConnected, Options: []string{"token"}},
		{URL: "ws://127.0.0.1:9", State: agent.StateFailed, Reason: "ws://127.0.0.1:9: 401 Unauthorized"},
	}}
	var b strings.Builder
	if err := printStatus(&b, st, "sandmux agent --stop"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\nws://127.0.0.1:9 (token #1)  ", "\nws://127.0.0.1:9 (token #2)  ", "\nws://127.0.0.1:9 (defaults)  ",
		"\nws://127.0.0.1:9 (token #1): failed: 401 Unauthorized\n", "\nws://127.0.0.1:9 (defaults): failed: 401 Unauthorized\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
}

// The head line counts in English: "1 open stream", "0 open streams".
func TestPrintStatusPlural(t *testing.T) {
	for n, want := range map[int]string{0: ", 0 open streams\n", 1: ", 1 open stream\n", 2: ", 2 open streams\n"} {
		var b strings.Builder
		if err := printStatus(&b, agent.Status{Started: time.Now(), Streams: n}, "sandmux agent --stop"); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), want) {
			t.Errorf("status with %d streams:\n%s\nwant %q", n, b.String(), want)
		}
	}
}

// An agent with no session says so instead of a table head over nothing.
func TestPrintStatusNoSessions(t *testing.T) {
	var b strings.Builder
	if err := printStatus(&b, agent.Status{Started: time.Now(), PID: 7}, "sandmux agent --stop"); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); strings.Contains(got, "URL") || !strings.HasSuffix(got, "0 open streams\nno sessions (the next ssh through sandmux opens one)\n") {
		t.Errorf("status of an agent with no session:\n%s", got)
	}
}

// The `sandmux agent --stop` that status and agent print for a user to
// copy names the agent directory they were given, by flag or by
// SANDMUX_AGENT_DIR: `sandmux status --agent-dir X` said to run `sandmux
// agent --stop`, which stops the default directory's agent instead.
func TestAgentStopCommandNamesTheDirectory(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_RUNTIME_DIR", "")
	def, err := defaultAgentDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		env  string
		want string
	}{
		{nil, "", "sandmux agent --stop"},
		{[]string{"--agent-dir", "/tmp/a b"}, "", "sandmux agent --stop --agent-dir '/tmp/a b'"},
		{nil, "/tmp/ab", "sandmux agent --stop --agent-dir /tmp/ab"},
		// An agent is always started with --agent-dir: its own lines
		// name it only where it is not the default.
		{[]string{"--agent-dir", def}, "", "sandmux agent --stop"},
	} {
		t.Setenv("SANDMUX_AGENT_DIR", tt.env)
		var got string
		cmd := &cli.Command{Name: "c", Flags: []cli.Flag{agentDirFlag()}, Action: func(c *cli.Context) error {
			dir, err := agentDir(c)
			got = agentStopCommand(c, dir)
			return err
		}}
		app := &cli.App{Commands: []*cli.Command{cmd}}
		if err := app.Run(append([]string{"sandmux", "c"}, tt.args...)); err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("args %q, SANDMUX_AGENT_DIR %q: %q, want %q", tt.args, tt.env, got, tt.want)
		}
	}
}
