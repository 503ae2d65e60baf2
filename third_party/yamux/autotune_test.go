package yamux

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"sync/atomic"
	"testing"
	"time"
)

func tuneSession(start, limit uint32, budget uint64) *Session {
	return &Session{
		config: &Config{
			MaxStreamWindowSize:    limit,
			StartStreamWindowSize:  start,
			MaxSessionWindowGrowth: budget,
		},
		streams:  map[uint32]*Stream{},
		inflight: map[uint32]struct{}{},
	}
}

// setRTT replaces the session's round-trip estimate.
func setRTT(sess *Session, d time.Duration) {
	sess.rtt.mu.Lock()
	sess.rtt.min, sess.rtt.at = d, time.Now()
	sess.rtt.mu.Unlock()
}

// consume records that the reader took n bytes.
func consume(s *Stream, n uint32) {
	s.recvLock.Lock()
	s.tuner.read += uint64(n)
	s.tune()
	s.recvLock.Unlock()
}

// The window doubles only when more than half of it was read within about
// two round trips, never without an RTT, and never beyond the maximum.
func TestWindowTuneRule(t *testing.T) {
	const mib = 1 << 20
	sess := tuneSession(mib, 3*mib, 0)
	s := newStream(sess, 1, streamEstablished)
	if s.tuner.max != mib {
		t.Fatalf("start window %d, want %d", s.tuner.max, mib)
	}

	consume(s, mib) // no RTT measured yet: no growth
	if s.tuner.max != mib {
		t.Fatalf("grew to %d without an RTT", s.tuner.max)
	}

	setRTT(sess, time.Millisecond) // a reader far slower than the path
	s.tuner.epochStart = time.Now().Add(-time.Second)
	consume(s, mib)
	if s.tuner.max != mib {
		t.Fatalf("grew to %d for a slow reader", s.tuner.max)
	}

	setRTT(sess, time.Hour) // the window, not the reader, set the pace
	consume(s, mib/2)       // only half: not yet judged
	if s.tuner.max != mib {
		t.Fatalf("grew to %d after half a window", s.tuner.max)
	}
	consume(s, 1)
	if s.tuner.max != 2*mib {
		t.Fatalf("window %d, want doubled to %d", s.tuner.max, 2*mib)
	}
	consume(s, 2*mib)
	if s.tuner.max != 3*mib {
		t.Fatalf("window %d, want capped at %d", s.tuner.max, 3*mib)
	}
	if got := sess.windowGrowth.Load(); got != 2*mib {
		t.Fatalf("session growth %d, want %d", got, 2*mib)
	}
}

// Growth across a session's streams stops at the budget, and a closed
// stream's growth returns to it.
func TestWindowTuneSessionBudget(t *testing.T) {
	const mib = 1 << 20
	sess := tuneSession(mib, 8*mib, 3*mib)
	setRTT(sess, time.Hour)
	a := newStream(sess, 1, streamEstablished)
	b := newStream(sess, 3, streamEstablished)
	sess.streams[a.id], sess.streams[b.id] = a, b

	consume(a, mib)   // 1 → 2 MiB
	consume(a, 2*mib) // 2 → 4 MiB: the budget is spent
	consume(b, mib)
	if a.tuner.max != 4*mib || b.tuner.max != mib {
		t.Fatalf("windows %d and %d, want %d and %d", a.tuner.max, b.tuner.max, 4*mib, mib)
	}

	// Closed with more than a start window unread: the memory is still
	// held, so is the budget, until the reader drains it.
	a.recvLock.Lock()
	a.recvBuf.appendSmall(make([]byte, 2*mib))
	a.noteUnread()
	a.recvLock.Unlock()
	sess.closeStream(a.id)
	if got := sess.windowGrowth.Load(); got != 3*mib {
		t.Fatalf("session growth %d with 2 MiB unread on the closed stream, want %d", got, 3*mib)
	}
	a.recvLock.Lock()
	a.recvBuf.Read(make([]byte, mib)) // 1 MiB left: fits the start window
	a.noteUnread()
	a.recvLock.Unlock()
	if got := sess.windowGrowth.Load(); got != 0 {
		t.Fatalf("session growth %d after the closed stream drained, want 0", got)
	}
	sess.closeStream(a.id) // twice: released once
	consume(b, mib)
	if b.tuner.max != 2*mib {
		t.Fatalf("window %d after budget returned, want %d", b.tuner.max, 2*mib)
	}
}

// Without a start window, a stream grants the maximum at once, as upstream.
func TestWindowTuneOffByDefault(t *testing.T) {
	sess := tuneSession(0, 4<<20, 0)
	if got := newStream(sess, 1, streamEstablished).tuner.max; got != 4<<20 {
		t.Fatalf("window %d, want the maximum %d", got, 4<<20)
	}
	sess = tuneSession(1, 4<<20, 0)
	if got := newStream(sess, 1, streamEstablished).tuner.max; got != initialStreamWindow {
		t.Fatalf("window %d, want at least yamux's initial %d", got, initialStreamWindow)
	}
}

// A growing window reaches the sender: before the reader reads, the
// sender may send only the start window; then bytes arrive intact and in
// order, the receiver never sees its window exceeded, and the window grew.
func TestWindowTuneOverTheWire(t *testing.T) {
	conf := testConfNoKeepAlive()                  // a ping would replace the RTT set below
	conf.ConnectionWriteTimeout = 10 * time.Second // whole-window frames, under -race
	conf.StartStreamWindowSize = initialStreamWindow
	conf.MaxStreamWindowSize = 4 << 20
	client, server := testConnTCP(t)
	cs, ss := testClientServerConfig(t, client, server, conf, conf.Clone())
	setRTT(ss, time.Hour)

	// Enough for the window to grow from the start to the maximum (about
	// 2 MiB read) and then to carry two maximum windows.
	want := make([]byte, 10<<20)
	rand.New(rand.NewSource(1)).Read(want)
	out, err := cs.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	st, err := ss.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	// The writer is stopped once it has used the start window, not at a
	// fixed time, which a loaded machine could reach with the window
	// only part sent.
	type wrote struct {
		n   int
		err error
	}
	first := make(chan wrote, 1)
	go func() {
		n, err := out.Write(want)
		first <- wrote{n, err}
	}()
	deadline := time.Now().Add(time.Minute) // only against a hang
	for atomic.LoadUint32(&out.sendWindow) != 0 && len(first) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	_ = out.SetWriteDeadline(time.Now())
	w := <-first
	if !errors.Is(w.err, ErrTimeout) || w.n != int(initialStreamWindow) {
		t.Fatalf("unread stream: Write = %d, %v; want the %d-byte start window, then a timeout", w.n, w.err, initialStreamWindow)
	}
	sent := w.n
	_ = out.SetWriteDeadline(time.Time{})
	errCh := make(chan error, 1)
	go func() {
		_, err := out.Write(want[sent:])
		if err == nil {
			err = out.Close()
		}
		errCh <- err
	}()
	_ = st.SetReadDeadline(time.Now().Add(2 * time.Minute)) // only against a hang
	got, err := io.ReadAll(st)
	if err != nil {
		// The writer waits for window that will never come: end the
		// session so that it returns, rather than hang the test.
		_ = cs.Close()
		<-errCh
		t.Fatalf("read after %d bytes: %v", len(got), err)
	}
	if werr := <-errCh; werr != nil {
		t.Fatalf("write: %v", werr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("received %d bytes that differ from the %d sent", len(got), len(want))
	}
	st.recvLock.Lock()
	grown := st.tuner.max
	st.recvLock.Unlock()
	if grown != conf.MaxStreamWindowSize {
		t.Fatalf("window %d, want grown to %d", grown, conf.MaxStreamWindowSize)
	}
}

// The estimate is the smallest recent ping, so one ping queued behind bulk
// data or spanning an outage does not inflate it, and it is capped.
func TestWindowTuneRTTEstimate(t *testing.T) {
	var r rttHolder
	if r.load() != 0 {
		t.Fatal("an estimate before any ping")
	}
	r.store(50 * time.Millisecond)
	r.store(80 * time.Millisecond)
	if got := r.load(); got != 50*time.Millisecond {
		t.Fatalf("estimate %v, want the smaller 50ms", got)
	}
	r.at = time.Now().Add(-2 * rttWindow) // the minimum has aged out
	r.store(3 * time.Minute)
	if got := r.load(); got != maxTuneRTT {
		t.Fatalf("estimate %v, want capped at %v", got, maxTuneRTT)
	}
	r.store(20 * time.Millisecond)
	if got := r.load(); got != 20*time.Millisecond {
		t.Fatalf("estimate %v, want 20ms", got)
	}
}
