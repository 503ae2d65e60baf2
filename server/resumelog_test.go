package server_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
)

// An operator follows a session through the server's log by its
// session=ID. The lines of a WebSocket lost and resumed ("transport lost;
// waiting to resume", "transport resumed") had none, and carried the
// remote address of the session's first WebSocket, not the one lost: on a
// server with many clients, which session had lost its WebSocket could
// not be told.
func TestResumeLogLinesNameTheSession(t *testing.T) {
	logs := &testutil.Buffer{}
	target := testutil.EchoServer(t).Addr
	var sw swapHandler
	sw.h.Store(fastServer(t, target, time.Minute, logs))
	fault, sess := throughFault(t, &sw)
	c := liveStream(t, sess)
	fault.Cut()
	if !testutil.Poll(hardWait, func() bool { return testutil.CountLines(logs.String(), "session resumed") > 0 }) {
		t.Fatalf("no resume\n--- server log ---\n%s", logs.String())
	}
	echo(t, c, "after")
	m := regexp.MustCompile(`msg="session started".* session=(\w+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no session id in the log\n%s", logs.String())
	}
	id := "session=" + m[1]
	for _, line := range []string{"transport lost; waiting to resume", "transport resumed"} {
		if testutil.CountLines(logs.String(), line, id) == 0 {
			t.Errorf("no %q line with %s\n--- server log ---\n%s", line, id, logs.String())
		}
	}
}
