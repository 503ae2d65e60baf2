package yamux

import (
	"net"
	"strings"
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

// A stream refused at the accept backlog is reset with its session's
// stream lock released: the RST waits for room in the send queue, up to
// the write timeout, and NumStreams (sandmux's Stats) and every other
// stream's open and close waited behind it while a peer that stopped
// reading kept the queue full. Sandmux's server held its own lock over
// NumStreams, so a /metrics scrape held every upgrade for ~22 s (1f2dba7).
func TestLockOrderBacklogResetOutsideStreamLock(t *testing.T) {
	peer, conn := net.Pipe() // the peer never reads: the send loop's first write blocks
	defer peer.Close()
	cfg := testConfNoKeepAlive()
	cfg.AcceptBacklog = 1
	cfg.ConnectionWriteTimeout = time.Minute // far past the test's patience
	logs := captureLogs(cfg)
	server, err := Server(conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	// Stream 1 waits in the backlog; each later one is refused with a
	// RST: one the send loop is stuck writing, a queue full, and one
	// waiting for room.
	queue := cap(server.sendCh)
	refused := queue + 2
	var syns []byte
	for i := range 1 + refused {
		hdr := header(make([]byte, headerSize))
		hdr.encode(typeWindowUpdate, flagSYN, uint32(2*i+1), 0)
		syns = append(syns, hdr...)
	}
	wrote := make(chan error, 1)
	go func() { _, err := peer.Write(syns); wrote <- err }()
	waitUntil(t, "the last refused stream's RST waits for room", func() bool {
		return strings.Count(logs.String(), "backlog exceeded") == refused && len(server.sendCh) == queue
	})

	got := make(chan int, 1)
	go func() { got <- server.NumStreams() }()
	select {
	case n := <-got:
		if n != 1 {
			t.Fatalf("NumStreams = %d, want 1 (the stream in the backlog)", n)
		}
	case <-time.After(lockOrderWait):
		t.Fatalf("NumStreams still waiting after %v: a refused stream's RST is sent holding streamLock", lockOrderWait)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
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
