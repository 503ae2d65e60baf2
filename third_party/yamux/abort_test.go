package yamux

import (
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

// Abort frees a stream with its unread data at once and resets it at the
// peer (sandmux patch).
func TestAbortResetsAndFrees(t *testing.T) {
	client, server := testClientServer(t)
	defer client.Close()
	defer server.Close()
	st, err := client.Open()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	peer, err := server.Accept()
	if err != nil {
		t.Fatal(err)
	}
	peer.(*Stream).Abort()
	if n := server.NumStreams(); n != 0 {
		t.Fatalf("%d streams left after Abort", n)
	}
	_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := st.Read(make([]byte, 1)); !errors.Is(err, ErrConnectionReset) {
		t.Fatalf("read at the peer: %v, want a reset", err)
	}
	peer.(*Stream).Abort() // a second time does nothing
}

// The peer's FIN, already on its way when Abort ends the stream, is moot:
// it does not end the session as a protocol error.
func TestAbortRacingPeerFIN(t *testing.T) {
	client, server := testClientServer(t)
	defer client.Close()
	defer server.Close()
	for i := range 2000 {
		st, err := client.OpenStream()
		if err != nil {
			t.Fatalf("iteration %d: open: %v", i, err)
		}
		if _, err := st.Write([]byte("x")); err != nil {
			t.Fatalf("iteration %d: write: %v", i, err)
		}
		peer, err := server.AcceptStream()
		if err != nil {
			t.Fatalf("iteration %d: accept: %v", i, err)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _ = st.Close() }()
		go func() { defer wg.Done(); peer.Abort() }()
		wg.Wait()
		if server.IsClosed() {
			t.Fatalf("iteration %d: the session ended after Abort raced the peer's FIN", i)
		}
	}
}

// What the peer sent before its reset is read first, as from a TCP
// socket, by Read and ReadChunk; the reset follows it, or the end of the
// data where the peer's FIN came before the reset (sandmux patch).
func TestResetReadsDataFirst(t *testing.T) {
	for _, c := range []struct{ chunks, fin bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		chunks := c.chunks
		client, server := testClientServer(t)
		st, err := client.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		const size = 200 << 10
		if _, err := st.Write(make([]byte, size)); err != nil {
			t.Fatal(err)
		}
		if c.fin {
			_ = st.Close() // FIN
		}
		st.Abort()
		peer, err := server.AcceptStream()
		if err != nil {
			t.Fatal(err)
		}
		_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
		// Wait for the reset to arrive behind the data.
		for end := time.Now().Add(10 * time.Second); ; {
			peer.stateLock.Lock()
			reset := peer.state == streamReset
			peer.stateLock.Unlock()
			if reset {
				break
			}
			if time.Now().After(end) {
				t.Fatal("the reset never arrived")
			}
			time.Sleep(time.Millisecond)
		}
		n := 0
		for {
			var m int
			if chunks {
				b, token, rerr := peer.ReadChunk()
				m, err = len(b), rerr
				peer.ReleaseChunk(token)
			} else {
				m, err = peer.Read(make([]byte, 32<<10))
			}
			n += m
			if err != nil {
				break
			}
		}
		want := ErrConnectionReset
		if c.fin {
			want = io.EOF
		}
		if n != size || !errors.Is(err, want) {
			t.Errorf("chunks %v, FIN first %v: read %d of %d bytes, then %v; want all, then %v", chunks, c.fin, n, size, err, want)
		}
		client.Close()
		server.Close()
	}
}
