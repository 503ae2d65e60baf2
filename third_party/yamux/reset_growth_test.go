package yamux

import (
	"errors"
	"testing"
	"time"
)

// A stream the peer reset gives its window growth back once its reader
// drained what came before the reset (sandmux patch), as a closed one does.
func TestResetReadsReturnGrowth(t *testing.T) {
	const mib = 1 << 20
	sess := tuneSession(mib, 8*mib, 3*mib)
	setRTT(sess, time.Hour)
	a := newStream(sess, 1, streamEstablished)
	sess.streams[a.id] = a
	consume(a, mib) // 1 → 2 MiB
	a.recvLock.Lock()
	a.recvBuf.appendSmall(make([]byte, 2*mib))
	a.noteUnread()
	a.recvLock.Unlock()
	if err := a.processFlags(flagRST); err != nil {
		t.Fatal(err)
	}
	if got := sess.windowGrowth.Load(); got != mib {
		t.Fatalf("session growth %d with 2 MiB unread, want %d", got, mib)
	}
	var err error
	for n := 0; err == nil; {
		var m int
		m, err = a.Read(make([]byte, 256<<10))
		n += m
	}
	if !errors.Is(err, ErrConnectionReset) {
		t.Fatalf("read ended with %v, want a reset", err)
	}
	if got := sess.windowGrowth.Load(); got != 0 {
		t.Fatalf("session growth %d after the reset stream drained, want 0", got)
	}
}
