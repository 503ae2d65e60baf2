package yamux

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

// bodyConn passes writes to conn, except that it holds the first write of
// more than a header's length (a data frame's body) until release is
// closed, after telling entered of the slice it was given.
type bodyConn struct {
	io.ReadWriteCloser
	entered chan []byte
	release chan struct{}
	held    bool // only the send loop writes
}

func (b *bodyConn) Write(p []byte) (int, error) {
	if len(p) > headerSize && !b.held {
		b.held = true
		b.entered <- p
		<-b.release
	}
	return b.ReadWriteCloser.Write(p)
}

// A frame's body is written from the sender's own buffer (sandmux patch:
// upstream copied it first), and a sender whose write times out meanwhile
// does not return, so does not reuse its buffer, before that write ends:
// the peer gets what was written, not what the buffer held later.
func TestBodyFromSendersBuffer(t *testing.T) {
	c1, c2 := testConnPipe(t)
	entered, release := make(chan []byte, 1), make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	defer unblock() // also when the test fails first
	conn := &bodyConn{ReadWriteCloser: c1, entered: entered, release: release}
	conf := testConfNoKeepAlive()
	conf.ConnectionWriteTimeout = 20 * time.Millisecond
	client, server := testClientServerConfig(t, conn, c2, conf, testConfNoKeepAlive())
	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	buf := bytes.Repeat([]byte("sandmux "), 1024)
	want := bytes.Clone(buf)
	wrote := make(chan error, 1)
	go func() {
		_, err := st.Write(buf)
		for i := range buf {
			buf[i] = 0xFF // as a caller reusing its buffer does
		}
		wrote <- err
	}()
	p := <-entered
	if &p[0] != &buf[0] {
		t.Error("the body was copied before its write")
	}
	// Well past the write timeout, the sender must still be waiting.
	select {
	case err := <-wrote:
		t.Fatalf("the write returned (%v) while its body was being written", err)
	case <-time.After(10 * conf.ConnectionWriteTimeout):
	}
	unblock()
	if err := <-wrote; err != nil && !errors.Is(err, ErrConnectionWriteTimeout) {
		t.Fatalf("write: %v", err)
	}
	peer, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(peer, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the peer read %d bytes differing from those written (%v)", len(got), err)
	}
}
