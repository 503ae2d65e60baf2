//go:build !windows

package agent

import (
	"io"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
)

// talker is a target that sends and reads at once until its connection
// fails, as a busy ssh session does, and reports each connection's end
// on the channel returned.
func talker(t *testing.T) (string, <-chan struct{}) {
	ended := make(chan struct{}, 8)
	srv := testutil.Serve(t, func(c net.Conn) {
		var wg sync.WaitGroup
		wg.Go(func() { _, _ = io.Copy(io.Discard, c) })
		buf := make([]byte, 32<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				break
			}
		}
		_ = c.Close() // its reader may wait on a peer that only half-closed
		wg.Wait()
		ended <- struct{}{}
	})
	return srv.Addr, ended
}

// The local side dying mid-transfer (ssh killed, a forward's client
// resetting its connection, the ssh of an --fdpass proxy killed) ends the
// stream at the target promptly, on every hand-off path; the proxy is
// told a clean end (ssh's end, not the tunnel's), and the agent logs no
// cut; the agent lets go of
// everything the stream held and serves the next stream as before.
func TestHandoffLocalDeathMidTransfer(t *testing.T) {
	for _, tc := range handedOff {
		t.Run(tc.name, func(t *testing.T) {
			target, ended := talker(t)
			var log testutil.Buffer
			r, _ := newResumeHandoffRig(t, target, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&log, nil)) })
			round := func() {
				t.Helper()
				end := tc.open(r, t)
				go func() { _, _ = io.Copy(io.Discard, end.r) }()
				if _, err := end.w.Write(make([]byte, 256<<10)); err != nil {
					t.Fatal(err)
				}
				end.die()
				select {
				case <-ended:
				case <-time.After(5 * time.Second):
					t.Fatal("the target's connection still open 5s after the local side died")
				}
				end.finished(t)
				testutil.WaitFor(t, 5*time.Second, "the agent to count no stream", func() bool {
					st, err := GetStatus(t.Context(), r.dir)
					return err == nil && st.Streams == 0
				})
			}
			round() // the session's own descriptors and goroutines, once
			// The collector off: its finalizers would close a leaked
			// connection that nothing reaches (OpenFDsAsIs).
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			fds, gs := testutil.OpenFDsAsIs(t), runtime.NumGoroutine()
			round()
			if !testutil.Poll(5*time.Second, func() bool { return testutil.OpenFDsAsIs(t) <= fds && runtime.NumGoroutine() <= gs }) {
				t.Fatalf("%d descriptors and %d goroutines 5s after the second stream, %d and %d after the first", testutil.OpenFDsAsIs(t), runtime.NumGoroutine(), fds, gs)
			}
			if strings.Contains(log.String(), "cut") {
				t.Fatalf("the agent logged a cut for the local side's end:\n%s", log.String())
			}
		})
	}
}
