package yamux

import (
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"
)

// slowCloseConn is a connection whose Close waits until release is
// closed: sandmux's resumable transport, whose Close sends END and waits
// for the peer's close handshake, up to seconds.
type slowCloseConn struct {
	io.ReadWriteCloser
	closing chan struct{} // closed when Close is called
	release chan struct{}
}

func (c *slowCloseConn) Close() error {
	close(c.closing)
	<-c.release
	return c.ReadWriteCloser.Close()
}

// TestSlowCloseEndsStreamWaits: a Read waiting for data and a Write
// waiting for window return ErrSessionShutdown as soon as the session
// shuts down, while its connection's Close is still under way. Upstream
// they went round their wait again on the shutdown, found the stream not
// closed yet (that comes after the connection's close) and waited again,
// at once: they spun, each a CPU's worth, until Close was done, and 50
// of them on a loaded two-CPU machine starved the goroutines that close
// waited for, past a server's --shutdown-timeout and the 5 s after it
// (e2e TestServerSIGTERMDrains50Streams, "sessions did not close").
func TestSlowCloseEndsStreamWaits(t *testing.T) {
	c, s := testConnPipe(t)
	slow := &slowCloseConn{ReadWriteCloser: c, closing: make(chan struct{}), release: make(chan struct{})}
	client, err := Client(slow, testConfNoKeepAlive())
	if err != nil {
		t.Fatal(err)
	}
	server, err := Server(s, testConfNoKeepAlive())
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	released := false
	release := func() {
		if !released {
			released = true
			close(slow.release)
		}
	}
	defer release()

	reader, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	writer, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	// The server never reads: the write stops at the window's end.
	wrote := make(chan error, 1)
	go func() {
		_, err := writer.Write(make([]byte, 4*initialStreamWindow))
		wrote <- err
	}()
	read := make(chan error, 1)
	go func() {
		_, err := reader.Read(make([]byte, 1))
		read <- err
	}()
	// Polled: nothing signals that the writer has sent all it may.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(lockOrderWait); atomic.LoadUint32(&writer.sendWindow) != 0; <-tick.C {
		if time.Now().After(deadline) {
			t.Fatalf("the writer still has %d bytes of window after %v", atomic.LoadUint32(&writer.sendWindow), lockOrderWait)
		}
	}

	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = client.Close()
	}()
	<-slow.closing
	for name, ch := range map[string]chan error{"Read": read, "Write": wrote} {
		select {
		case err := <-ch:
			if !errors.Is(err, ErrSessionShutdown) {
				t.Errorf("%s = %v while the connection closes, want %v", name, err, ErrSessionShutdown)
			}
		case <-time.After(lockOrderWait):
			t.Errorf("%s still waiting %v after the session shut down, while its connection closes", name, lockOrderWait)
		}
	}
	release()
	<-closed
}
