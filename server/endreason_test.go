package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/server"
)

// TestSessionEndReason: the "session ended" line says why, so that an
// operator asked about a user's dropped ssh can tell a client that left
// from one that was idle, never came back, or was ended by the server.
// The line said only silent_timeout=false for all of them.
func TestSessionEndReason(t *testing.T) {
	echo := newEchoTarget(t)
	const ended = `msg="session ended"`

	for name, noResume := range map[string]bool{"client closed v2": false, "client closed v1": true} {
		t.Run(name, func(t *testing.T) {
			s, logs := logServer(t, echo.addr, nil)
			cfg := clientConfig(s.url)
			cfg.NoResume = noResume
			_ = dial(t, cfg).Close()
			waitLog(t, logs, ended, `reason="client closed the session"`)
		})
	}

	t.Run("idle", func(t *testing.T) {
		s, logs := logServer(t, echo.addr, func(c *server.Config) { c.IdleTimeout = 100 * time.Millisecond })
		_ = dial(t, clientConfig(s.url))
		waitLog(t, logs, ended, `reason="idle for --idle-timeout (100ms)"`)
	})

	t.Run("server shutting down", func(t *testing.T) {
		s, logs := logServer(t, echo.addr, nil)
		sess := dial(t, clientConfig(s.url))
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if _, err := sess.OpenStream(ctx, ""); err != nil {
			t.Fatal(err)
		}
		_ = s.srv.Close()
		waitLog(t, logs, ended, `reason="server shutting down"`)
	})

	t.Run("not resumed", func(t *testing.T) {
		var logs testutil.Buffer
		srv := fastServer(t, echo.addr, 300*time.Millisecond, &logs)
		fault, _ := throughFault(t, srv)
		_ = fault.Close() // the client's every attempt to resume is refused
		waitLog(t, &logs, ended, `reason="client did not resume within --resume-grace (300ms) after:`)
	})
}

// A v1 session its client closes is logged as closed by the client every
// time. About 1 in 100 were logged "connection lost": the WebSocket
// library's close cancelled its reads first, which closed the socket,
// at times before the close frame went out; and a server whose write
// failed as the library closed the connection on that frame judged the
// end before its reader had returned the close.
func TestV1CloseToldEveryTime(t *testing.T) {
	echo := newEchoTarget(t)
	const n = 300
	const ended = `msg="session ended"`
	var wrong []string
	for range n {
		// A server of its own each time: the race was with the server's
		// first writes of a session.
		s, logs := logServer(t, echo.addr, nil)
		cfg := clientConfig(s.url)
		cfg.NoResume = true
		_ = dial(t, cfg).Close()
		testutil.WaitFor(t, waitTimeout, "the session's end logged", func() bool {
			return strings.Contains(logs.String(), ended)
		})
		if !strings.Contains(logs.String(), `reason="client closed the session"`) {
			wrong = append(wrong, logs.String())
		}
		_ = s.srv.Close()
	}
	if len(wrong) > 0 {
		t.Fatalf("%d of %d v1 sessions closed by their client were not logged so; the first:\n%s", len(wrong), n, wrong[0])
	}
}

// TestShutdownTimeoutLine: a drain that runs out says how many streams it
// cuts before the lines of the sessions it closes. The line came after
// them, from the command, and without a count.
func TestShutdownTimeoutLine(t *testing.T) {
	s, logs := logServer(t, newEchoTarget(t).addr, nil)
	sess := dial(t, clientConfig(s.url))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := sess.OpenStream(ctx, ""); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, waitTimeout, "the stream to be served", func() bool { return s.srv.Stats().ActiveStreams == 1 })
	short, stop := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer stop()
	if err := s.srv.Shutdown(short); err == nil {
		t.Fatal("Shutdown returned nil with a stream open past its deadline")
	}
	waitLog(t, logs, `msg="session ended"`, `reason="server shutting down"`)
	log := logs.String()
	cut := strings.Index(log, `msg="streams still open at the shutdown timeout; closing them" streams=1 raw_sessions=0`)
	ended := strings.Index(log, `msg="session ended"`)
	if cut < 0 || cut > ended {
		t.Errorf("want the shutdown timeout's line, with streams=1, before the session's end:\n%s", log)
	}
}

// TestRefusedTokenLine: the line for a refused upgrade says whether the
// token was missing or wrong, which tells the fix (set one, or update
// it); it said "missing or wrong" only.
func TestRefusedTokenLine(t *testing.T) {
	s, logs := logServer(t, newEchoTarget(t).addr, func(c *server.Config) { c.Token = "s3cret" })
	for token, fault := range map[string]string{"": "missing", "guess": "wrong"} {
		cfg := clientConfig(s.url)
		cfg.Token = token
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		if sess, err := client.Dial(ctx, cfg); err == nil {
			_ = sess.Close()
			t.Errorf("token %q: upgraded", token)
		}
		cancel()
		waitLog(t, logs, `msg="refused upgrade: missing or wrong token" token=`+fault)
	}
	if strings.Contains(logs.String(), "guess") {
		t.Errorf("the server logged the token:\n%s", logs.String())
	}
}
