package server_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/netem"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
	"github.com/sandmux/sandmux/server"
)

// resumeRig is a server with resumption on, behind a fault proxy that the
// test cuts, and a client session dialed through it.
type resumeRig struct {
	srv   *server.Server
	fault *netem.Proxy
	sess  *client.Session
}

func newResumeRig(t *testing.T, target string, grace time.Duration) *resumeRig {
	t.Helper()
	return newResumeRigWith(t, target, grace, nil)
}

// newResumeRigWith is newResumeRig with both sides' mux configuration
// changed by edit after the rig's own, if not nil.
func newResumeRigWith(t *testing.T, target string, grace time.Duration, edit func(*mux.Config)) *resumeRig {
	t.Helper()
	// The cuts are resets, which both ends see at once; the keepalive's
	// 300 ms death watch only ended sessions of its own on a loaded
	// machine, dozens of times a run (130 resumes for 4 cuts), before
	// the WELCOME too, which ends a session by design, and opens made
	// in those storms ran out of time.
	tolerant := func(c *mux.Config) {
		c.DeadAfter = 10 * time.Second
		if edit != nil {
			edit(c)
		}
	}
	srv := fastServerWith(t, target, grace, nil, func(c *server.Config) { tolerant(&c.Mux) })
	fault, sess := throughFaultWith(t, srv, func(c *client.Config) { tolerant(&c.Mux) })
	if !sess.Resumable() {
		t.Fatal("session is not resumable")
	}
	return &resumeRig{srv: srv, fault: fault, sess: sess}
}

var maxCuts = 4

// TestResumeProperty cuts the WebSocket at random moments while streams
// move random amounts in random write sizes; every stream must read back
// exactly what it wrote.
func TestResumeProperty(t *testing.T) {
	rig := newResumeRig(t, testutil.EchoServer(t).Addr, 30*time.Second)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))

	sizes := make([]int, 6)
	for i := range sizes {
		sizes[i] = 1<<20 + rng.IntN(3<<20)
	}
	done, errs := echoStreams(rig.sess, sizes, rng)

	cuts := 0
	for cuts < maxCuts {
		select {
		case <-done:
		case <-time.After(time.Duration(20+rng.IntN(200)) * time.Millisecond):
			if rig.fault.Cut() > 0 {
				cuts++
			}
			continue
		}
		break
	}
	<-done
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	st := rig.sess.Mux().Stats()
	t.Logf("cuts %d, resumes %d, replayed %d bytes", cuts, st.Resumes, st.Replayed)
	if cuts > 0 && st.Resumes == 0 {
		t.Errorf("%d cuts but no resume", cuts)
	}
}

// echoStreams runs echoRoundTrip on a stream of each size at once, with
// seeds drawn from rng. done closes when all have finished; errs, closed
// by then, holds their results.
func echoStreams(sess *client.Session, sizes []int, rng *rand.Rand) (done <-chan struct{}, errs <-chan error) {
	var wg sync.WaitGroup
	results := make(chan error, len(sizes))
	for i, size := range sizes {
		wseed := rng.Uint64()
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- echoRoundTrip(sess, size, wseed, i)
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(results); close(finished) }()
	return finished, results
}

// echoRoundTrip writes size random bytes in random-sized writes on a new
// stream and checks the echo byte for byte.
func echoRoundTrip(sess *client.Session, size int, seed uint64, id int) error {
	conn, err := openRetry(sess)
	if err != nil {
		return err
	}
	defer conn.Close()
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	want := sha256.Sum256(data)
	werr := make(chan error, 1)
	go func() {
		rest := data
		for len(rest) > 0 {
			n := min(len(rest), 1+rng.IntN(96<<10))
			if _, err := conn.Write(rest[:n]); err != nil {
				werr <- err
				return
			}
			rest = rest[n:]
		}
		werr <- conn.(interface{ CloseWrite() error }).CloseWrite()
	}()
	got, err := io.ReadAll(conn)
	if err != nil {
		return err
	}
	if err := <-werr; err != nil {
		return err
	}
	if sha256.Sum256(got) != want {
		return fmt.Errorf("stream %d: echo differs: %s", id, diffAt(data, got))
	}
	return nil
}

// openRetry opens a stream; an open racing a cut may time out waiting for
// its header reply on a resuming session, which a caller may retry.
func openRetry(sess *client.Session) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return sess.OpenStream(ctx, "")
}

// diffAt locates the first difference and, for a shift, by how much: a
// positive shift means bytes were lost, a negative one duplicated.
func diffAt(want, got []byte) string {
	for i := range min(len(want), len(got)) {
		if want[i] != got[i] {
			shift := "none found"
			probe := got[i:min(len(got), i+64)]
			for d := -(1 << 20); d <= 1<<20; d++ {
				j := i + d
				if j >= 0 && j+len(probe) <= len(want) && string(want[j:j+len(probe)]) == string(probe) {
					shift = fmt.Sprint(d)
					break
				}
			}
			return fmt.Sprintf("first difference at byte %d of %d (got %d bytes), shift %s", i, len(want), len(got), shift)
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(want), len(got))
}
