package yamux

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// A stream that has not grown yet when it closes (both sides closed, so
// closeStream marked it; or its session closed) and whose reader's last
// fast reads would then double its window gives that growth back as it
// takes it: nothing else would, the stream's later reads return EOF
// without noting what is unread, so until the stream was garbage the
// shared budget stayed short of a doubling, for every such stream.
func TestWindowBudgetNoGrowthAfterClose(t *testing.T) {
	const mib = 1 << 20
	budget := NewWindowBudget(64 * mib)
	sess := tuneSession(mib, 8*mib, 8*mib)
	sess.config.WindowBudget = budget
	setRTT(sess, time.Hour)
	s := newStream(sess, 1, streamEstablished)
	sess.streams[s.id] = s
	sess.closeStream(s.id) // closed, nothing unread and nothing grown yet
	consume(s, mib)        // the reader's last read, fast enough to double
	if got := budget.InUse(); got != 0 {
		t.Fatalf("budget in use %d after a closed stream's last read, want 0", got)
	}
	if got := sess.windowGrowth.Load(); got != 0 {
		t.Fatalf("session growth %d after a closed stream's last read, want 0", got)
	}
	runtime.KeepAlive(s)
}

// Readers growing their streams' first windows while the stream closes
// (closedForGrowth, as closeStream and Session.Close run it, without
// recvLock) leave nothing of the shared budget taken, whichever comes
// first: closedForGrowth stores closed before it loads the cell, tune
// stores the cell before it loads closed.
func TestWindowBudgetGrowthRacingClose(t *testing.T) {
	const mib = 1 << 20
	budget := NewWindowBudget(1 << 40)
	sess := tuneSession(mib, 8*mib, 1<<40)
	sess.config.WindowBudget = budget
	setRTT(sess, time.Hour)
	var streams []*Stream
	for round := range 2000 {
		s := newStream(sess, uint32(2*round+1), streamEstablished)
		streams = append(streams, s)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			consume(s, mib)
		}()
		go func() {
			defer wg.Done()
			s.closedForGrowth()
		}()
		wg.Wait()
	}
	if got := budget.InUse(); got != 0 {
		t.Fatalf("budget in use %d after every stream closed and drained, want 0", got)
	}
	runtime.KeepAlive(streams)
}

// A stream aborted with bytes unread gives its growth back at once: its
// reader is gone, so nothing would drain it, and until the stream was
// garbage the shared budget stayed short of its growth.
func TestWindowBudgetAbortGivesGrowthBack(t *testing.T) {
	const mib = 1 << 20
	budget := NewWindowBudget(64 * mib)
	sess := tuneSession(mib, 8*mib, 8*mib)
	sess.config.WindowBudget = budget
	sess.shutdownCh = make(chan struct{})
	close(sess.shutdownCh) // Abort's RST has nowhere to go here
	setRTT(sess, time.Hour)
	s := newStream(sess, 1, streamEstablished)
	sess.streams[s.id] = s
	consume(s, mib) // 1 → 2 MiB
	if budget.InUse() == 0 {
		t.Fatal("the stream did not grow")
	}
	s.recvLock.Lock()
	s.recvBuf.appendSmall(make([]byte, 2*mib))
	s.noteUnread()
	s.recvLock.Unlock()
	s.Abort()
	if got := budget.InUse(); got != 0 {
		t.Fatalf("budget in use %d after the stream was aborted, want 0", got)
	}
	if got := sess.windowGrowth.Load(); got != 0 {
		t.Fatalf("session growth %d after the stream was aborted, want 0", got)
	}
	if n, err := s.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read after abort: %d, %v; want nothing and an error", n, err)
	}
	runtime.KeepAlive(s)
}
