package yamux

import (
	"errors"
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
