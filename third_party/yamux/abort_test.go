package yamux

import (
	"errors"
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
