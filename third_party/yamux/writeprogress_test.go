package yamux

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slowConn is one end of a testConnPipe whose peer reads at rate bytes a
// second: the pipe is synchronous, so every write to the other end waits
// for these paced reads, as on a slow uplink that keeps moving.
type slowConn struct {
	io.ReadWriteCloser
	rate  float64 // bytes per second
	start time.Time
	read  int64 // only the session's receive loop reads
}

func (s *slowConn) Read(p []byte) (int, error) {
	if s.start.IsZero() {
		s.start = time.Now()
	}
	if len(p) > 16<<10 {
		p = p[:16<<10]
	}
	n, err := s.ReadWriteCloser.Read(p)
	s.read += int64(n)
	// Pacing, not synchronisation: each read returns no sooner than the
	// rate allows for the bytes read so far.
	due := s.start.Add(time.Duration(float64(s.read) / s.rate * float64(time.Second)))
	time.Sleep(time.Until(due))
	return n, err
}

// progressSessions starts a client over a link the server reads at rate,
// the client's write timeout being timeout.
func progressSessions(t *testing.T, rate float64, timeout time.Duration, serverWindow uint32) (client, server *Session) {
	c1, c2 := testConnPipe(t)
	conf := testConfNoKeepAlive()
	conf.ConnectionWriteTimeout = timeout
	sconf := testConfNoKeepAlive()
	sconf.ConnectionWriteTimeout = 10 * time.Second
	if serverWindow > 0 {
		sconf.MaxStreamWindowSize = serverWindow
	}
	return testClientServerConfig(t, c1, &slowConn{ReadWriteCloser: c2, rate: rate}, conf, sconf)
}

// A frame queued behind other streams' frames for longer than the write
// timeout, while the connection moves bytes all along (sandmux patch: a
// slow uplink with parallel uploads), is sent: the timeout is for a
// connection that made no progress for that long. Upstream's timer ran
// from the frame's queueing, so a stream's Write failed with
// ErrConnectionWriteTimeout behind 31 others at 1 MiB/s.
func TestWriteProgressManyStreamsSlowLink(t *testing.T) {
	const (
		streams = 32
		frame   = 32 << 10 // 32 ms at the rate; a round of all streams is 1 s
		frames  = 2
	)
	client, server := progressSessions(t, 1<<20, 300*time.Millisecond, 0)
	accepted := make(chan error, streams)
	var wg sync.WaitGroup
	defer wg.Wait()
	go func() {
		for range streams {
			st, err := server.AcceptStream()
			if err != nil {
				accepted <- err
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				accepted <- readStream(st, frame*frames)
			}()
		}
	}()
	opened := make([]*Stream, streams)
	for i := range opened {
		st, err := client.OpenStream()
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		opened[i] = st
	}
	wrote := make(chan error, streams)
	for i, st := range opened {
		go func() {
			wrote <- writeStream(st, byte(i), frame, frames)
		}()
	}
	for range streams {
		if err := <-wrote; err != nil {
			t.Errorf("write: %v", err)
		}
	}
	for range streams {
		if err := <-accepted; err != nil {
			t.Errorf("read: %v", err)
		}
	}
	if client.IsClosed() {
		t.Error("the client's session ended on a connection that kept moving")
	}
}

// writeStream writes frames frames of size bytes, each byte being the
// stream's id byte, and closes st (resets it on a failed write).
func writeStream(st *Stream, id byte, size, frames int) error {
	buf := bytes.Repeat([]byte{id}, size)
	buf[0] = id // the reader learns the id from the first byte
	for range frames {
		if _, err := st.Write(buf); err != nil {
			st.Abort() // its reader ends at once, not at its deadline
			return err
		}
	}
	return st.Close()
}

// readStream reads want bytes, all equal to the first, then the end.
func readStream(st *Stream, want int) error {
	defer st.Close()
	_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(st)
	if err != nil {
		return fmt.Errorf("after %d bytes: %w", len(got), err)
	}
	if len(got) != want || bytes.Count(got, got[:1]) != want {
		return fmt.Errorf("got %d bytes, want %d of one value", len(got), want)
	}
	return nil
}

// A single body whose write lasts longer than the write timeout, while
// the connection moves its bytes, does not end the session: the send
// loop counts progress in pieces of progressChunk (sandmux patch).
// Upstream's timer fired during the write, and the session ended.
func TestWriteProgressLargeBodySlowLink(t *testing.T) {
	const size = 4 << 20 // 500 ms at the rate; a piece takes 32 ms
	client, server := progressSessions(t, 8<<20, 300*time.Millisecond, size)
	st, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	peer, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	// The whole body goes as one frame once the server's grant is in.
	deadline := time.Now().Add(10 * time.Second)
	for atomic.LoadUint32(&st.sendWindow) < size {
		if time.Now().After(deadline) {
			t.Fatalf("the send window stayed at %d", atomic.LoadUint32(&st.sendWindow))
		}
		time.Sleep(time.Millisecond) // polling, with a deadline
	}
	read := make(chan error, 1)
	go func() { read <- readStream(peer, size) }()
	if err := writeStream(st, 7, size, 1); err != nil {
		t.Errorf("write: %v", err)
	}
	if err := <-read; err != nil && !errors.Is(err, io.EOF) {
		t.Errorf("read: %v", err)
	}
	if client.IsClosed() {
		t.Error("the client's session ended on a connection that kept moving")
	}
}

// stallConn passes writes to conn until pass bodies (writes longer than a
// header) have gone; the next body's write blocks until the connection
// is closed, as on a peer that stopped reading. stalled is closed then.
type stallConn struct {
	io.ReadWriteCloser
	pass    int // only the send loop writes
	stalled chan struct{}
	closed  chan struct{}
	once    sync.Once
}

func (s *stallConn) Write(p []byte) (int, error) {
	if len(p) > headerSize {
		if s.pass == 0 {
			close(s.stalled)
			<-s.closed
			return 0, io.ErrClosedPipe
		}
		s.pass--
	}
	return s.ReadWriteCloser.Write(p)
}

func (s *stallConn) Close() error {
	s.once.Do(func() { close(s.closed) })
	return s.ReadWriteCloser.Close()
}

// A connection that moved and then stopped (its peer stopped reading)
// still ends the session within about the write timeout, with frames of
// other streams queued behind the stuck one: their timers see no
// progress and do not re-arm.
func TestWriteProgressStuckLinkEndsSession(t *testing.T) {
	const streams, frame, frames, timeout = 8, 32 << 10, 4, 300 * time.Millisecond
	c1, c2 := testConnPipe(t)
	// Fewer bodies pass than one stream writes, so no stream completes.
	conn := &stallConn{ReadWriteCloser: c1, pass: frames - 1, stalled: make(chan struct{}), closed: make(chan struct{})}
	conf := testConfNoKeepAlive()
	conf.ConnectionWriteTimeout = timeout
	sconf := testConfNoKeepAlive()
	sconf.ConnectionWriteTimeout = 10 * time.Second
	client, server := testClientServerConfig(t, conn, &slowConn{ReadWriteCloser: c2, rate: 1 << 20}, conf, sconf)
	go func() {
		for {
			st, err := server.AcceptStream()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, st) }()
		}
	}()
	opened := make([]*Stream, streams)
	for i := range opened {
		st, err := client.OpenStream()
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		opened[i] = st
	}
	wrote := make(chan error, streams)
	for i, st := range opened {
		go func() { wrote <- writeStream(st, byte(i), frame, frames) }()
	}
	<-conn.stalled
	stalledAt := time.Now()
	select {
	case <-client.CloseChan():
		t.Logf("the session ended %v after the connection stalled (timeout %v)", time.Since(stalledAt), timeout)
	case <-time.After(10 * time.Second):
		_ = client.Close()
		t.Fatal("the session outlived a stuck connection by 10 s")
	}
	for range streams {
		if err := <-wrote; err == nil {
			t.Error("a write on a stuck connection succeeded")
		}
	}
}
