package yamux

import (
	"bytes"
	"io"
	"sync"
	"testing"
	"time"
)

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond) // polling, not synchronisation
	}
}

// held sums what streams hold of their session's receive window.
func held(streams []*Stream) (sum uint64) {
	for _, s := range streams {
		sum += uint64(s.tuner.held.Load())
	}
	return sum
}

// pattern is n bytes that differ per stream and per offset.
func pattern(id, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + id*13 + i/251)
	}
	return b
}

// A session whose readers stall holds no more than its receive window
// (plus the 256 KiB every stream may always hold), where each stream
// alone would have granted its full start window; a stream opened
// meanwhile still moves its data; and once the stalled streams are read,
// a new stream gets its full window again. No byte is lost.
func TestSessionReceiveWindowBoundsStalledStreams(t *testing.T) {
	const (
		mib   = 1 << 20
		n     = 12
		limit = 4 * mib
		size  = 3 * mib
	)
	conf := func(limit uint64) *Config {
		c := testConf()
		c.ConnectionWriteTimeout = 10 * time.Second
		c.MaxStreamWindowSize = 8 * mib
		c.StartStreamWindowSize = 2 * mib
		c.MaxSessionReceiveWindow = limit
		return c
	}
	var writers sync.WaitGroup
	t.Cleanup(writers.Wait) // after the sessions' close, which ends stuck writes
	cc, sc := testConnTCP(t)
	client, server := testClientServerConfig(t, cc, sc, conf(0), conf(limit))

	send := func(id int, s *Stream) {
		writers.Add(1)
		go func() {
			defer writers.Done()
			defer s.Close()
			if _, err := s.Write(pattern(id, size)); err != nil {
				t.Errorf("stream %d: write: %v", id, err)
			}
		}()
	}
	accept := func() *Stream {
		t.Helper()
		s, err := server.AcceptStream()
		if err != nil {
			t.Fatalf("accept: %v", err)
		}
		return s
	}

	stalled := make([]*Stream, n)
	for i := range stalled {
		c, err := client.OpenStream()
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		send(i, c)
		stalled[i] = accept()
	}
	bound := uint64(limit + n*initialStreamWindow)
	if got := held(stalled); got > bound {
		t.Fatalf("stalled streams were granted %d bytes, want at most %d", got, bound)
	}
	// Every grant arrived and was filled: nothing more can come.
	waitUntil(t, "the stalled streams' windows are full", func() bool {
		for _, s := range stalled {
			s.recvLock.Lock()
			w := s.recvWindow
			s.recvLock.Unlock()
			if w != 0 {
				return false
			}
		}
		return true
	})
	if got := held(stalled); got > bound {
		t.Fatalf("stalled streams buffer %d bytes, want at most %d", got, bound)
	}

	// Not starved: a stream opened now moves all of its data.
	c, err := client.OpenStream()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	send(n, c)
	late := accept()
	got, err := io.ReadAll(late)
	if err != nil || !bytes.Equal(got, pattern(n, size)) {
		t.Fatalf("late stream: read %d bytes (err %v), want the %d sent", len(got), err, size)
	}

	for i, s := range stalled {
		got, err := io.ReadAll(s)
		if err != nil || !bytes.Equal(got, pattern(i, size)) {
			t.Fatalf("stream %d: read %d bytes (err %v), want the %d sent", i, len(got), err, size)
		}
		s.Close()
	}
	late.Close()
	writers.Wait()
	waitUntil(t, "the server's streams are gone", func() bool { return server.NumStreams() == 0 })

	c, err = client.OpenStream()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer c.Close()
	fresh := accept()
	defer fresh.Close()
	if got := fresh.tuner.held.Load(); got != 2*mib {
		t.Fatalf("a stream alone on the session holds %d, want its start window %d", got, 2*mib)
	}
}

// A stream whose peer has finished sending leaves the session's map as
// soon as both sides have closed (here the reader half-closed first, as a
// forwarded client that shuts down its sending side does), but its unread
// bytes are still held: they must still count against the session's
// receive window, or every finished-but-unread stream buffers a whole
// window beside the cap. Once read (or dropped), they count no more.
func TestSessionReceiveWindowCountsClosedUnreadStreams(t *testing.T) {
	const (
		mib   = 1 << 20
		n     = 8
		limit = 4 * mib
		size  = 2 * mib
	)
	conf := func(limit uint64) *Config {
		c := testConf()
		c.ConnectionWriteTimeout = 10 * time.Second
		c.MaxStreamWindowSize = 4 * mib
		c.StartStreamWindowSize = 2 * mib
		c.MaxSessionReceiveWindow = limit
		return c
	}
	var writers sync.WaitGroup
	t.Cleanup(writers.Wait)
	cc, sc := testConnTCP(t)
	client, server := testClientServerConfig(t, cc, sc, conf(0), conf(limit))

	finished := make([]*Stream, 0, n)
	for i := 0; i < n; i++ {
		c, err := client.OpenStream()
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		s, err := server.AcceptStream()
		if err != nil {
			t.Fatalf("accept: %v", err)
		}
		s.Close() // half-close: the server side still reads
		finished = append(finished, s)
		writers.Add(1)
		go func(id int) {
			defer writers.Done()
			// As much as the window lets through at once; the rest
			// would wait for a read that does not come.
			c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			_, _ = c.Write(pattern(id, size))
			c.Close()
		}(i)
		writers.Wait()
		waitUntil(t, "the finished stream leaves the session", func() bool { return server.NumStreams() == 0 })
	}
	var unread uint64
	for _, s := range finished {
		unread += uint64(s.tuner.unread.Load())
	}
	if bound := uint64(limit + n*initialStreamWindow); unread > bound {
		t.Fatalf("finished, unread streams buffer %d bytes, want at most %d", unread, bound)
	}
	for _, s := range finished {
		if _, err := io.Copy(io.Discard, s); err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	// Read: the next stream gets its full start window again.
	c, err := client.OpenStream()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer c.Close()
	fresh, err := server.AcceptStream()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	defer fresh.Close()
	if got := fresh.tuner.held.Load(); got != 2*mib {
		t.Fatalf("a stream alone on the session holds %d, want its start window %d", got, 2*mib)
	}
}
