package yamux

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// heldConn holds every write while its gate is shut, until the gate
// opens or the connection is closed (the write then fails), as a peer
// that stopped reading holds a socket's writes.
type heldConn struct {
	io.ReadWriteCloser
	mu      sync.Mutex
	gate    chan struct{} // nil: open
	closed  chan struct{}
	once    sync.Once
	waiting atomic.Int32 // writes held at the gate
}

func newHeldConn(c io.ReadWriteCloser) *heldConn {
	return &heldConn{ReadWriteCloser: c, closed: make(chan struct{})}
}

func (g *heldConn) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate == nil {
		g.gate = make(chan struct{})
	}
}

func (g *heldConn) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
}

func (g *heldConn) Write(p []byte) (int, error) {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		g.waiting.Add(1)
		defer g.waiting.Add(-1)
		select {
		case <-gate:
		case <-g.closed:
			return 0, io.ErrClosedPipe
		}
	}
	return g.ReadWriteCloser.Write(p)
}

func (g *heldConn) Close() error {
	g.once.Do(func() { close(g.closed) })
	return g.ReadWriteCloser.Close()
}

// waitHeld waits until the send loop is held at the gate.
func waitHeld(t *testing.T, g *heldConn) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); g.waiting.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the send loop never reached the gate")
		}
	}
}

// sendOutcomeSessions is a client on a gated connection, and its server,
// with an open stream on each side (the SYN and ACK exchanged).
func sendOutcomeSessions(t *testing.T) (*heldConn, *Session, *Stream, *Stream) {
	c, s := testConnPipe(t)
	g := newHeldConn(c)
	client, server := testClientServerConfig(t, g, s, testConfNoKeepAlive(), testConfNoKeepAlive())
	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte("0")); err != nil {
		t.Fatal(err)
	}
	peer, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(peer, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	return g, client, st, peer
}

// readAll reads peer to its end (at most 10 s).
func readAll(t *testing.T, peer *Stream) []byte {
	t.Helper()
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(peer)
	if err != nil {
		t.Fatalf("read %q, then %v", got, err)
	}
	return got
}

// A Write that fails its write timeout while its frame waits in the send
// queue (behind a frame the connection does not take) has written
// nothing, and nothing of it is written later; nor does the stream's
// next Write take the withdrawn frame's result for its own (sandmux
// patch). Upstream left the frame queued with a copy of its body: it
// went out once the connection moved, after its Write had returned 0
// and the timeout (a caller that tried again sent it twice), and its
// result waited on the stream's channel for the next Write.
func TestSendOutcomeQueuedFrameWithdrawn(t *testing.T) {
	g, client, st, peer := sendOutcomeSessions(t)
	g.shut()
	hdr := header(make([]byte, headerSize))
	hdr.encode(typePing, flagSYN, 0, 99)
	if err := client.sendNoWait(hdr); err != nil { // taken, and held
		t.Fatal(err)
	}
	waitHeld(t, g)
	n, err := st.Write([]byte("lost"))
	if n != 0 || !errors.Is(err, ErrConnectionWriteTimeout) {
		t.Fatalf("a write queued behind a held frame returned %d, %v; want 0 and the write timeout", n, err)
	}
	g.open()
	if _, err := client.Ping(); err != nil { // what was queued has gone now
		t.Fatal(err)
	}
	if len(st.sendErr) != 0 {
		t.Error("a result waits on the stream for its next Write")
	}
	if _, err := st.Write([]byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, peer); string(got) != "kept" {
		t.Fatalf("the peer read %q; want only the write that succeeded, %q", got, "kept")
	}
}

// A Write whose frame the send loop had begun to write when its timeout
// passed (the connection took nothing since) ends the session and
// reports what was written: nothing here, and nothing of it arrives
// later (sandmux patch). Upstream returned the timeout, left the session
// open and the header's write under way, and the frame went out whole
// once the connection moved.
func TestSendOutcomeTakenFrameStuckInHeader(t *testing.T) {
	g, client, st, peer := sendOutcomeSessions(t)
	g.shut()
	n, err := st.Write([]byte("lost"))
	if n != 0 || !errors.Is(err, ErrConnectionWriteTimeout) {
		t.Fatalf("a write stuck in its header returned %d, %v; want 0 and the write timeout", n, err)
	}
	g.open()
	select {
	case <-client.CloseChan():
	case <-time.After(10 * time.Second):
		t.Fatal("the session stayed open on a stuck connection")
	}
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(peer)
	if len(got) != 0 {
		t.Fatalf("the peer read %q of a write that reported none written", got)
	}
}

// shortConn takes only the first n bytes of the first body write of more
// than a header's length, and then fails, as a connection that breaks in
// the middle of a frame.
type shortConn struct {
	io.ReadWriteCloser
	n    int
	done bool // only the send loop writes
}

var errShortConn = errors.New("connection broke mid-frame")

func (c *shortConn) Write(p []byte) (int, error) {
	if len(p) > headerSize && !c.done {
		c.done = true
		n, _ := c.ReadWriteCloser.Write(p[:c.n])
		return n, errShortConn
	}
	return c.ReadWriteCloser.Write(p)
}

// A Write whose frame's body the connection took only part of reports
// that part as written, with the error (sandmux patch; upstream said 0):
// the caller knows which bytes may have reached the peer.
func TestSendOutcomePartialBodyCounted(t *testing.T) {
	c, s := testConnPipe(t)
	client, server := testClientServerConfig(t, &shortConn{ReadWriteCloser: c, n: 100}, s, testConfNoKeepAlive(), testConfNoKeepAlive())
	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	go func() { // the peer reads, so that the pipe takes the frame
		if peer, err := server.AcceptStream(); err == nil {
			_, _ = io.Copy(io.Discard, peer)
		}
	}()
	n, err := st.Write(bytes.Repeat([]byte("x"), 1000))
	if n != 100 || !errors.Is(err, errShortConn) {
		t.Fatalf("write returned %d, %v; want 100 and the connection's error", n, err)
	}
}

// A stream's write deadline bounds only the wait for send window, before
// anything is queued: a Write whose deadline passes there returns what
// it sent and ErrTimeout, and nothing more of it goes out later. (A frame
// already queued waits for the connection's write timeout instead.)
func TestSendOutcomeWriteDeadlineWaitingForWindow(t *testing.T) {
	c, s := testConnPipe(t)
	client, server := testClientServerConfig(t, c, s, testConfNoKeepAlive(), testConfNoKeepAlive())
	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("w"), int(initialStreamWindow)+1000) // the peer does not read yet
	_ = st.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := st.Write(want)
	if n != int(initialStreamWindow) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("write returned %d, %v; want the window's %d bytes and ErrTimeout", n, err, initialStreamWindow)
	}
	peer, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan []byte, 1)
	go func() {
		_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, _ := io.ReadAll(peer)
		read <- got
	}()
	_ = st.SetWriteDeadline(time.Time{})
	if _, err := st.Write([]byte("next")); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	got := <-read
	if string(got) != string(want[:n])+"next" {
		t.Fatalf("the peer read %d bytes, want the %d written and %q", len(got), n, "next")
	}
}
