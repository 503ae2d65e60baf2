package server_test

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/netem"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/server"
)

// Sessions churn through small receive and resume buffers at once, each
// echoing data on two streams through a 10 ms path, while the path is
// cut under them (every session resumes, replaying under the budget's
// pressure), and each ends one of two ways: closed once every byte came
// back, or closed in mid-transfer. Every stream that finished got its
// bytes back whole and in order, no one waited for the buffers forever,
// and once every session has ended both buffers are back at exactly 0.
func TestBuffersBackToZeroAfterChurn(t *testing.T) {
	const workers, rounds = 4, 3
	srv, url := testutil.SandmuxServer(t, func(c *server.Config) {
		c.MaxReceiveBuffer = rbBudget
		c.MaxResumeBuffer = 1 << 20
		// A session closed while its path was cut cannot tell the server
		// (END): the server keeps it, and its unacknowledged bytes, this
		// long.
		c.ResumeGrace = 2 * time.Second
		rbWindows(c)
	})
	path, err := netem.Start(netem.Config{Target: strings.TrimPrefix(url, "ws://"), Delay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer path.Close()

	s := sample(srv)
	defer s.close() // also when the test fails: goleak checks the package
	var echoed, cuts atomic.Int64
	stopCuts := make(chan struct{})
	var cutter sync.WaitGroup
	cutter.Go(func() {
		// A cut each time another few MiB came back, so that it falls
		// in mid-transfer, with the buffers in use.
		for next := int64(3 << 20); ; next += 5 << 20 {
			for echoed.Load() < next {
				select {
				case <-stopCuts:
					return
				case <-time.After(time.Millisecond):
				}
			}
			cuts.Add(int64(path.Cut()))
		}
	})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for round := range rounds {
				churnSession(t, "ws://"+path.Addr(), uint64(w*rounds+round), (w+round)%3 == 0, &echoed)
			}
		})
	}
	wg.Wait()
	close(stopCuts)
	cutter.Wait()
	testutil.WaitFor(t, 20*time.Second, "every session to end at the server", func() bool {
		return srv.Stats().ActiveSessions == 0
	})
	// A stream that ended with more than its start window unread (a
	// session closed in mid-transfer, its splice gone) gives its growth
	// back once it is garbage (third_party/yamux/autotune.go): collect,
	// as a busy server's allocations would. A reference kept anywhere
	// still fails here.
	if !testutil.Poll(10*time.Second, func() bool {
		runtime.GC()
		st := srv.Stats()
		return st.ReceiveBufferInUse == 0 && st.ResumeBufferInUse == 0
	}) {
		st := srv.Stats()
		t.Fatalf("after every session ended, %d bytes of the receive buffer and %d of the resume buffer are still in use, want 0",
			st.ReceiveBufferInUse, st.ResumeBufferInUse)
	}
	t.Logf("%d bytes echoed, %d connections cut; at most %d of the receive buffer in use, %d of the resume buffer",
		echoed.Load(), cuts.Load(), s.inUse.Load(), s.resumeInUse.Load())
}

// churnSession dials a session, echoes size random bytes on each of two
// streams, checking them, and closes it: once every byte came back, or,
// if abort, once half of them did.
func churnSession(t *testing.T, url string, seed uint64, abort bool, echoed *atomic.Int64) {
	cfg := fastClient(url)
	cfg.Mux.StreamWindow, cfg.Mux.SpareStreamWindow, cfg.Mux.MaxStreamWindow = rbStart, 0, rbMax
	sess := dialWelcomed(t, cfg)
	if sess == nil {
		return
	}
	defer sess.Close()
	const size = 1 << 20
	half := make(chan struct{}, 2)
	var streams sync.WaitGroup
	for i := range 2 {
		data, _ := randomData(seed*2+uint64(i), size)
		c, err := sess.OpenStream(context.Background(), "")
		if err != nil {
			t.Error(err)
			return
		}
		streams.Go(func() { _, _ = c.Write(data) }) // fails once an abort closes the session
		streams.Go(func() {
			defer c.Close()
			got := make([]byte, size)
			for n := 0; n < size; {
				k, err := c.Read(got[n:])
				n += k
				echoed.Add(int64(k))
				if n >= size/2 && n-k < size/2 {
					half <- struct{}{}
				}
				if err != nil {
					if !abort {
						t.Errorf("stream %d/%d: read after %d bytes: %v", seed, i, n, err)
					}
					return
				}
			}
			if !bytes.Equal(got, data) {
				t.Errorf("stream %d/%d: the echo differs from what was sent", seed, i)
			}
		})
	}
	if abort {
		select {
		case <-half:
		case <-time.After(time.Minute):
			t.Errorf("session %d: half the bytes did not come back", seed)
		}
		_ = sess.Close()
	}
	streams.Wait()
}

// dialWelcomed dials sessions until one is welcomed by the server: a cut
// in the handshake, or before the WELCOME, ends a new session by design
// (client.ErrNoWelcome).
func dialWelcomed(t *testing.T, cfg client.Config) *client.Session {
	for range 10 {
		sess, err := client.Dial(context.Background(), cfg)
		if err != nil {
			continue // cut in the handshake
		}
		welcomed := func() bool {
			select {
			case <-sess.Done():
				return true
			default:
				return sess.Welcomed()
			}
		}
		if testutil.Poll(10*time.Second, welcomed) && sess.Welcomed() {
			return sess
		}
		_ = sess.Close()
	}
	t.Error("no session was welcomed in 10 attempts")
	return nil
}
