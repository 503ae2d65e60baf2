package yamux

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// A stream written and finished before its session's Close reaches the
// peer whole, with its FIN, on TCP and TLS (sandmux patch, linger.go).
// Closing the socket at once, while it held the peer's unread window
// updates, sent a reset that dropped the data still in the kernel's send
// queue: about one round in five read a connection reset mid-frame and a
// truncated stream.
func TestLingerFinishedStreamSurvivesSessionClose(t *testing.T) {
	for _, c := range []struct {
		name  string
		conns func(testing.TB) (io.ReadWriteCloser, io.ReadWriteCloser)
	}{{"TCP", testConnTCP}, {"TLS", testConnTLS}} {
		t.Run(c.name, func(t *testing.T) {
			for round := 0; round < 15; round++ {
				lingerRound(t, c.conns)
			}
		})
	}
}

func lingerRound(t *testing.T, conns func(testing.TB) (io.ReadWriteCloser, io.ReadWriteCloser)) {
	cc, sc := conns(t)
	client, server := testClientServerConfig(t, cc, sc, testConfNoKeepAlive(), testConfNoKeepAlive())
	want := make([]byte, server.config.MaxStreamWindowSize) // needs window updates
	for i := range want {
		want[i] = byte(i * 7)
	}
	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(want); err != nil {
		t.Fatal(err)
	}
	peer, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(peer)
	if err != nil || !bytes.Equal(got, want) || !peer.RemoteFinished() {
		<-server.CloseChan()
		t.Fatalf("read %d of %d bytes (same: %v), then %v, FIN arrived: %v, session ended by: %v",
			len(got), len(want), bytes.Equal(got, want[:len(got)]), err, peer.RemoteFinished(), server.shutdownErr)
	}
}

// Close waits for the peer to close its side for the write timeout at
// most: a peer that never reads nor closes (here a bare socket) does not
// hold it up longer.
func TestLingerBoundedByWriteTimeout(t *testing.T) {
	cc, sc := testConnTCP(t)
	conf := testConfNoKeepAlive()
	client, err := Client(cc, conf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.OpenStream(); err != nil { // a SYN the peer never answers
		t.Fatal(err)
	}
	start := time.Now()
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > conf.ConnectionWriteTimeout+2*time.Second {
		t.Fatalf("Close took %v with a write timeout of %v", took, conf.ConnectionWriteTimeout)
	}
	// The peer got the FIN of the half-close, not a reset.
	_ = sc.(net.Conn).SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, sc); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the peer read %v, want the end of the connection", err)
	}
}
