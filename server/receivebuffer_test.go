package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
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

// Windows small enough for a test to fill, shaped as the defaults are: a
// stream starts at the smallest window yamux allows and may grow 16-fold.
const (
	rbStart  = 256 << 10
	rbMax    = 4 << 20
	rbBudget = 4 << 20 // one stream's full growth, and a little
)

// receiveBufferServer is a server forwarding to target whose windows are
// rb*, with MaxReceiveBuffer budget, reached through a path of 10 ms round
// trip: on loopback a reader is rarely fast enough, by the round trip, for
// a window to grow.
func receiveBufferServer(t *testing.T, target string, budget uint64) (*server.Server, string) {
	t.Helper()
	srv, url := testutil.SandmuxServer(t, func(c *server.Config) {
		c.Target = target
		c.MaxReceiveBuffer = budget
		rbWindows(c)
	})
	path, err := netem.Start(netem.Config{Target: strings.TrimPrefix(url, "ws://"), Delay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = path.Close() })
	return srv, "ws://" + path.Addr()
}

// rbWindows gives c's sessions the rb* windows, and keepalives often
// enough for a round-trip estimate soon.
func rbWindows(c *server.Config) {
	c.Mux.KeepAliveInterval = 200 * time.Millisecond
	c.Mux.StreamWindow = rbStart
	c.Mux.SpareStreamWindow = 0
	c.Mux.MaxStreamWindow = rbMax
	c.Mux.WindowGrowth = 2 * rbMax
	c.Mux.SessionWindow = 4 * rbMax
}

// randomData is n bytes that no shift of a stream's bytes would repeat,
// and their SHA-256.
func randomData(seed uint64, n int) ([]byte, [sha256.Size]byte) {
	data := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, seed))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	return data, sha256.Sum256(data)
}

// dialStream dials a session with cfg and opens a stream to its default
// target; the caller closes the session.
func dialStream(t *testing.T, cfg client.Config) (*client.Session, net.Conn) {
	t.Helper()
	sess, err := client.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sess.OpenStream(context.Background(), "")
	if err != nil {
		_ = sess.Close()
		t.Fatal(err)
	}
	return sess, c
}

// waitStill waits until n has moved and then stayed put for 300 ms: the
// senders it counts are held back by their windows, or by the server's
// bounds, rather than between two writes.
func waitStill(t *testing.T, n *atomic.Int64, what string) {
	t.Helper()
	last, since := n.Load(), time.Now()
	testutil.WaitFor(t, 30*time.Second, what, func() bool {
		if v := n.Load(); v != last {
			last, since = v, time.Now()
		}
		return last > 0 && time.Since(since) > 300*time.Millisecond
	})
}

// stallTarget reads the first warm bytes of each connection at once (so
// that its stream's window grows), then reads nothing until release is
// closed, then the rest; it reports each connection's SHA-256.
type stallTarget struct {
	addr    string
	stalled chan struct{}
	release chan struct{}
	sums    chan [sha256.Size]byte
}

func newStallTarget(t *testing.T, n int, warm int64) *stallTarget {
	st := &stallTarget{
		stalled: make(chan struct{}, n),
		release: make(chan struct{}),
		sums:    make(chan [sha256.Size]byte, n),
	}
	st.addr = testutil.Serve(t, func(c net.Conn) {
		h := sha256.New()
		if _, err := io.CopyN(h, c, warm); err != nil {
			t.Errorf("target: the first %d bytes: %v", warm, err)
			return
		}
		st.stalled <- struct{}{}
		<-st.release
		if _, err := io.Copy(h, c); err != nil {
			t.Errorf("target: %v", err)
			return
		}
		st.sums <- [sha256.Size]byte(h.Sum(nil))
	}).Addr
	return st
}

// sampler records the largest values of what the server's streams hold
// of their receive windows and of its receive buffer in use, and of what
// its resumable sessions hold unacknowledged and of its resume buffer in
// use.
type sampler struct {
	held, inUse          atomic.Uint64 // receive windows
	unacked, resumeInUse atomic.Uint64 // resume buffers
	stop                 chan struct{}
	wg                   sync.WaitGroup
}

func sample(srv *server.Server) *sampler {
	s := &sampler{stop: make(chan struct{})}
	s.wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			st := srv.Stats()
			s.held.Store(max(s.held.Load(), srv.ReceiveHeld()))
			s.inUse.Store(max(s.inUse.Load(), st.ReceiveBufferInUse))
			s.unacked.Store(max(s.unacked.Load(), srv.Unacked()))
			s.resumeInUse.Store(max(s.resumeInUse.Load(), st.ResumeBufferInUse))
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	})
	return s
}

func (s *sampler) close() { close(s.stop); s.wg.Wait() }

// Clients on many sessions write as fast as they can to targets that stop
// reading: the server's streams together never hold more than the receive
// buffer beyond each stream's start window, where each session alone may
// hold up to its session window (without the shared budget, n × 4 MiB of
// grown windows, four times the bound); and once the targets read again,
// every byte arrives, in order.
func TestReceiveBufferBoundsSessionsTogether(t *testing.T) {
	const (
		n     = 4
		warm  = 8 << 20 // enough for a window to grow to rbMax
		total = warm + 2*rbMax
	)
	data, want := randomData(1, total)
	target := newStallTarget(t, n, warm)
	srv, url := receiveBufferServer(t, target.addr, rbBudget)
	s := sample(srv)
	defer s.close()

	var written atomic.Int64
	var writers sync.WaitGroup
	defer writers.Wait()
	for range n {
		sess, c := dialStream(t, fastClient(url))
		defer sess.Close()
		writers.Go(func() {
			defer c.Close()
			for p := data; len(p) > 0; {
				k, err := c.Write(p[:min(len(p), 64<<10)])
				written.Add(int64(k))
				if err != nil {
					t.Errorf("write: %v", err)
					return
				}
				p = p[k:]
			}
		})
	}
	for range n {
		select {
		case <-target.stalled:
		case <-time.After(time.Minute):
			t.Fatal("the targets did not read their first bytes")
		}
	}
	// Stalled: the writers go on until the windows granted are full.
	waitStill(t, &written, "the writers to stop at their windows")
	bound := uint64(rbBudget + n*rbStart)
	t.Logf("stalled: the server's streams hold %d (at most %d), %d of the budget in use (at most %d)",
		srv.ReceiveHeld(), s.held.Load(), srv.Stats().ReceiveBufferInUse, s.inUse.Load())
	if got := s.held.Load(); got > bound {
		t.Errorf("the server's streams held %d bytes of receive window, over the receive buffer and the start windows, %d", got, bound)
	}
	if got := s.inUse.Load(); got > rbBudget {
		t.Errorf("receive buffer in use reached %d, over its %d", got, rbBudget)
	}

	close(target.release)
	for i := range n {
		select {
		case got := <-target.sums:
			if !bytes.Equal(got[:], want[:]) {
				t.Errorf("stream %d: the target read other bytes than were sent", i)
			}
		case <-time.After(time.Minute):
			t.Fatalf("stream %d: the target did not read to the end", i)
		}
	}
	writers.Wait()
	testutil.WaitFor(t, 10*time.Second, "the receive buffer to be given back", func() bool {
		return srv.Stats().ReceiveBufferInUse == 0
	})
}

// One session on an idle server still grows its stream's window as far
// as it may: the receive buffer holds it back only when others use it.
func TestReceiveBufferLetsOneStreamGrow(t *testing.T) {
	target, drained := testutil.DrainServer(t)
	srv, url := receiveBufferServer(t, target.Addr, rbBudget)
	sess, err := client.Dial(context.Background(), fastClient(url))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	c, err := sess.OpenStream(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var grew atomic.Bool
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		defer c.Close()
		buf := make([]byte, 64<<10)
		for written := 0; !grew.Load() && written < 256<<20; written += len(buf) {
			if _, err := c.Write(buf); err != nil {
				t.Errorf("write: %v", err)
				return
			}
		}
	})
	const full = rbMax - rbStart
	testutil.WaitFor(t, time.Minute, "the stream's window to grow to its largest", func() bool {
		return srv.Stats().ReceiveBufferInUse == full
	})
	grew.Store(true)
	wg.Wait()
	if d := testutil.AwaitDrained(t, drained); d.Err != nil {
		t.Fatalf("target: %v", d.Err)
	}
}

// The default receive and resume buffers let a session grow and keep all
// that its own bounds let it, so one session's throughput is what it was
// without them.
func TestDefaultBuffersHoldASession(t *testing.T) {
	c := server.DefaultConfig()
	if c.MaxReceiveBuffer < c.Mux.WindowGrowth {
		t.Errorf("default receive buffer %d is below one session's window growth %d", c.MaxReceiveBuffer, c.Mux.WindowGrowth)
	}
	if c.MaxResumeBuffer < uint64(c.Resume.Buffer) {
		t.Errorf("default resume buffer %d is below one session's %d", c.MaxResumeBuffer, c.Resume.Buffer)
	}
}

// Clients on many resumable sessions read what their targets send but
// their acknowledgements do not arrive (the path towards the server is
// frozen, as for a client that reads and never acknowledges): the server
// keeps every byte until it is acknowledged, and all sessions together
// keep no more than the resume buffer and, each, what it may always have
// in flight (where each alone may keep 64 MiB: without the shared budget,
// all the 8 MiB each client granted). Once the path thaws, every byte
// arrives, in order.
func TestResumeBufferBoundsSessionsTogether(t *testing.T) {
	const (
		n      = 4
		window = 8 << 20
		total  = 2 * window
		budget = 2 << 20
	)
	data, want := randomData(2, total)
	start := make(chan struct{})
	accepted := make(chan struct{}, n)
	target := testutil.Serve(t, func(c net.Conn) {
		accepted <- struct{}{}
		<-start
		_, _ = c.Write(data)
		_ = c.Close()
	})
	srv, url := testutil.SandmuxServer(t, func(c *server.Config) {
		c.Target = target.Addr
		c.MaxResumeBuffer = budget
	})
	path, err := netem.Start(netem.Config{Target: strings.TrimPrefix(url, "ws://")})
	if err != nil {
		t.Fatal(err)
	}
	defer path.Close()

	var got atomic.Int64
	var readers sync.WaitGroup
	defer readers.Wait()
	sums := make(chan [sha256.Size]byte, n)
	for range n {
		cfg := fastClient("ws://" + path.Addr())
		// Only the frozen path may hold the bytes back, not a silence the
		// client would take for a dead path and redial.
		cfg.Mux.KeepAliveInterval = time.Minute
		cfg.Mux.StreamWindow, cfg.Mux.SpareStreamWindow, cfg.Mux.MaxStreamWindow = window, 0, window
		sess, c := dialStream(t, cfg)
		defer sess.Close()
		readers.Go(func() {
			defer c.Close()
			h := sha256.New()
			buf := make([]byte, 64<<10)
			for {
				k, err := c.Read(buf)
				h.Write(buf[:k])
				got.Add(int64(k))
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Errorf("read: %v", err)
					return
				}
			}
			sums <- [sha256.Size]byte(h.Sum(nil))
		})
	}
	for range n {
		<-accepted
	}
	s := sample(srv)
	defer s.close()
	path.FreezeToTarget()
	close(start)
	waitStill(t, &got, "the server to stop sending")
	bound := uint64(budget + n*(1<<20)) // MinInFlight, a small message's slack and a message, each
	t.Logf("frozen: the server holds %d unacknowledged (at most %d), %d of the budget in use (at most %d); clients read %d",
		srv.Unacked(), s.unacked.Load(), srv.Stats().ResumeBufferInUse, s.resumeInUse.Load(), got.Load())
	if u := s.unacked.Load(); u > bound {
		t.Errorf("the server held %d bytes unacknowledged, over the resume buffer and what each session may always have in flight, %d", u, bound)
	}
	path.Thaw()
	for i := range n {
		select {
		case sum := <-sums:
			if sum != want {
				t.Errorf("stream %d: the client read other bytes than were sent", i)
			}
		case <-time.After(time.Minute):
			t.Fatalf("stream %d: the client did not read to the end", i)
		}
	}
	testutil.WaitFor(t, 10*time.Second, "the resume buffer to be given back", func() bool {
		return srv.Stats().ResumeBufferInUse == 0
	})
}
