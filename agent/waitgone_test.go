package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
)

// A proxy that goes away while it waits for its session (ssh's
// ConnectTimeout ran out and ssh hung up on it, or Ctrl-C) stops being
// waited for: sandmux status showed it as "(+1 waiting)", and the agent
// kept dialling for it, for the rest of its --connect-timeout (30 s), and
// would open a stream for nobody if the server came back meanwhile.
func TestGoneProxyStopsWaiting(t *testing.T) {
	down := "ws://" + deadServer(t)
	dir := shortDir(t)
	runAgent(t, dir, nil)
	ctx, cancel := context.WithCancel(context.Background())
	opened := make(chan error, 1)
	go func() {
		_, err := Open(ctx, dir, noStart, OpenRequest{URL: down, Host: "box", ConnectTimeout: time.Minute})
		opened <- err
	}()
	waiting := func(n int) func() bool {
		return func() bool {
			st, err := GetStatus(context.Background(), dir)
			return err == nil && len(st.Sessions) == 1 && st.Sessions[0].DialErrors > 0 && st.Sessions[0].Waiting == n
		}
	}
	if !testutil.Poll(10*time.Second, waiting(1)) {
		t.Fatal("the request never showed as waiting for its session")
	}
	cancel() // the proxy gives up and closes its connection
	if err := <-opened; !errors.Is(err, context.Canceled) {
		t.Fatalf("open: %v, want the cancellation", err)
	}
	if !testutil.Poll(5*time.Second, waiting(0)) {
		st, err := GetStatus(context.Background(), dir)
		t.Fatalf("a proxy that went away still counts as waiting 5s later: %+v, %v", st, err)
	}
}
