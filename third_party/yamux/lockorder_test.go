package yamux

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lockOrderWait bounds a wait that only a lock-order deadlock makes long.
const lockOrderWait = 10 * time.Second

// Two goroutines reading one stream whose peer has finished: each Read
// checks the state under stateLock and the buffer under recvLock inside
// it, and then grants window in sendWindowUpdate, which asked for the
// state's flags (stateLock) while holding recvLock. One Read in each got
// both locks' first half and waited for the other's forever, and with
// them the session's receive loop, at the stream's next frame, and Close.
func TestLockOrderConcurrentReads(t *testing.T) {
	// Not closed if the test fails: Close would wait for the locks too.
	client, server := leakedClientServer(t)
	const size = 128 << 10
	for round := range 20 {
		st, err := client.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Write(make([]byte, size)); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		peer, err := server.AcceptStream()
		if err != nil {
			t.Fatal(err)
		}
		// Every Read now takes the closed state's path, stateLock then
		// recvLock, beside the window update's.
		waitUntil(t, "the peer's FIN arrived", peer.RemoteFinished)

		var got atomic.Int64
		var wg sync.WaitGroup
		done := make(chan struct{})
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := make([]byte, 16)
				for {
					n, err := peer.Read(b)
					got.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
		}
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(lockOrderWait):
			t.Fatalf("round %d: two Reads on one stream still blocked after %v, %d of %d bytes read: "+
				"stateLock and recvLock taken in opposite orders (Read, sendWindowUpdate)",
				round, lockOrderWait, got.Load(), size)
		}
		if got.Load() != size {
			t.Fatalf("round %d: read %d bytes, want %d", round, got.Load(), size)
		}
	}
}

// leakedClientServer is testClientServer whose sessions are closed only
// if the test passes: a deadlocked stream's locks hold Close as well.
// Without keepalives and with a long write timeout, so that a loaded
// machine does not end them first.
func leakedClientServer(t *testing.T) (*Session, *Session) {
	conf := func() *Config {
		cfg := testConfNoKeepAlive()
		cfg.ConnectionWriteTimeout = lockOrderWait
		return cfg
	}
	c, s := testConnTLS(t)
	client, err := Client(c, conf())
	if err != nil {
		t.Fatal(err)
	}
	server, err := Server(s, conf())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			_ = client.Close()
			_ = server.Close()
		}
	})
	return client, server
}
