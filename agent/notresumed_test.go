package agent

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/netem"
	"github.com/sandmux/sandmux/internal/testutil"
)

// A session that could not be resumed, with no proxy waiting, is not
// dialled again: the next proxy dials it. The agent redialled at once,
// for nobody: it held the new session idle until --persist when the
// server answered, and when it did not, counted a dial error and went
// idle anyway. Either way the proxy whose stream was on the session is
// told it could not be resumed, and the next one gets a stream.
func TestNotResumedSessionRedialsOnlyWhenUsed(t *testing.T) {
	t.Run("server back", func(t *testing.T) {
		// The server restarted: the resume is refused, and a dial would
		// be taken.
		srv := testutil.RestartableServer(t)
		testNotResumed(t, srv.URL, func(fault *netem.Proxy) { srv.Restart(); fault.Cut() }, "could not be resumed: ", true)
	})
	t.Run("server gone", func(t *testing.T) {
		// Every attempt is refused until the agent's resume timeout runs out.
		_, url := testutil.SandmuxServer(t, nil)
		testNotResumed(t, url, func(fault *netem.Proxy) { _ = fault.Close() }, "could not be resumed within 300ms", false)
	})
}

// testNotResumed has a proxy's stream on a session to url through a
// fault proxy, loses the session by lose, and checks what the proxy is
// told (want), that nothing dials until the next proxy, and that the
// next proxy dials: it gets a stream if the server is back, else the
// dial's refusal.
func testNotResumed(t *testing.T, url string, lose func(*netem.Proxy), want string, back bool) {
	fault, err := netem.Start(netem.Config{Target: strings.TrimPrefix(url, "ws://")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fault.Close() })
	dir := shortDir(t)
	runAgent(t, dir, nil)
	req := OpenRequest{URL: "ws://" + fault.Addr(), Host: "box", ConnectTimeout: 5 * time.Second,
		Resume: &ResumeOptions{Timeout: 300 * time.Millisecond}}
	c, err := echoVia(dir, req, "on the session")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lose(fault)
	if _, err := io.ReadAll(c); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("the proxy's stream on the lost session ended with %v, want %q", err, want)
	}
	last := waitIdle(t, dir, "the session to be idle")
	// A dial would have come at once (the first retry is prompt); the
	// maintainer has exited, so none can come now.
	if last.Connects != 1 || last.DialErrors != 0 {
		t.Fatalf("with nobody waiting, the agent dialled: %d connects, %d dial errors (%s)", last.Connects, last.DialErrors, last.Reason)
	}
	if !strings.Contains(last.Reason, want) || !strings.HasSuffix(last.Reason, "; reconnects when next used") {
		t.Errorf("idle for %q, want why the session ended and that the next use dials", last.Reason)
	}
	if !back {
		req.ConnectTimeout = 300 * time.Millisecond
	}
	c2, err := echoVia(dir, req, "the next proxy")
	if !back {
		// The server is gone: the next proxy's own dial is refused.
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("the next proxy, with the server gone: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("the next proxy: %v", err)
	}
	c2.Close()
	if st, _ := onlySession(dir); st.Connects != 2 {
		t.Fatalf("the next proxy's session: %d connects, want 2", st.Connects)
	}
}
