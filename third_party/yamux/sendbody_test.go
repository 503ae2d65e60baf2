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
// upstream copied it first), and the sender does not return, so does not
// reuse its buffer, before that write ends: the peer gets what was
// written, not what the buffer held later.
func TestBodyFromSendersBuffer(t *testing.T) {
	c1, c2 := testConnPipe(t)
	entered, release := make(chan []byte, 1), make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	defer unblock() // also when the test fails first
	conn := &bodyConn{ReadWriteCloser: c1, entered: entered, release: release}
	client, server := testClientServerConfig(t, conn, c2, testConfNoKeepAlive(), testConfNoKeepAlive())
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
	select {
	case err := <-wrote:
		t.Fatalf("the write returned (%v) while its body was being written", err)
	default:
	}
	unblock()
	if err := <-wrote; err != nil {
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

// stuckConn passes writes to conn, except that a body's write blocks until
// the connection is closed, as on a peer that stopped reading.
type stuckConn struct {
	io.ReadWriteCloser
	closed chan struct{}
	once   sync.Once
}

func (s *stuckConn) Write(p []byte) (int, error) {
	if len(p) > headerSize {
		<-s.closed
		return 0, io.ErrClosedPipe
	}
	return s.ReadWriteCloser.Write(p)
}

func (s *stuckConn) Close() error {
	s.once.Do(func() { close(s.closed) })
	return s.ReadWriteCloser.Close()
}

// A body whose write outlasts the write timeout ends the session, which
// ends the write: its sender gets the timeout instead of waiting for a
// peer that stopped reading.
func TestBodyStuckPastTimeoutEndsSession(t *testing.T) {
	c1, c2 := testConnPipe(t)
	conn := &stuckConn{ReadWriteCloser: c1, closed: make(chan struct{})}
	conf := testConfNoKeepAlive()
	conf.ConnectionWriteTimeout = 50 * time.Millisecond
	client, _ := testClientServerConfig(t, conn, c2, conf, testConfNoKeepAlive())
	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := st.Write(make([]byte, 64<<10))
		wrote <- err
	}()
	select {
	case err := <-wrote:
		if !errors.Is(err, ErrConnectionWriteTimeout) {
			t.Fatalf("write: %v, want the write timeout", err)
		}
	case <-time.After(10 * time.Second):
		_ = client.Close()
		t.Fatal("a write stuck past its timeout still waits")
	}
	if !client.IsClosed() {
		t.Error("the session stayed open on a stuck connection")
	}
}
