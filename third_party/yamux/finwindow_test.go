package yamux

import (
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"
)

// writesFail is a connection whose writes fail once fail is set, as a
// resumable transport's do after the peer's END, while what it had
// received is still read.
type writesFail struct {
	io.ReadWriteCloser
	fail atomic.Bool
}

var errWritesFail = errors.New("the peer closed the session")

func (w *writesFail) Write(b []byte) (int, error) {
	if w.fail.Load() {
		return 0, errWritesFail
	}
	return w.ReadWriteCloser.Write(b)
}

// A stream whose FIN has arrived reads all its buffered data and then
// EOF, even when the window update a read sends fails because the
// connection just failed (sandmux patch). Upstream returned that failure
// with the read's bytes: a server splicing such a stream to its target
// took it for a cut and reset the target, which lost the end of an upload
// its client had finished (data, FIN, then END as it closed its session).
func TestFinishedStreamReadsToEOFWhenWindowUpdateFails(t *testing.T) {
	c, s := testConnPipe(t)
	ws := &writesFail{ReadWriteCloser: s}
	client, server := testClientServerConfig(t, c, ws, testConfNoKeepAlive(), testConfNoKeepAlive())
	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	const size = 200 << 10 // within the initial window: no update needed
	want := make([]byte, size)
	for i := range want {
		want[i] = byte(i * 7)
	}
	if _, err := st.Write(want); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil { // FIN
		t.Fatal(err)
	}
	peer, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !peer.RemoteFinished(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the FIN did not arrive")
		}
	}
	ws.fail.Store(true)
	var got []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := peer.Read(buf)
		got = append(got, buf[:n]...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %d of %d bytes, then %v; want every byte, then EOF", len(got), size, err)
		}
	}
	if string(got) != string(want) {
		t.Fatalf("read %d bytes, not the %d written", len(got), size)
	}
}
