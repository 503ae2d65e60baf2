package yamux

import (
	"io"
	"sync"
	"sync/atomic"
	"testing"
)

// shutsDownOnWrite is a connection whose write of a body of n bytes,
// once armed, ends the session and returns only once the session is
// shut down: the frame is written, and then the session ends, before
// its writer has been told.
type shutsDownOnWrite struct {
	io.ReadWriteCloser
	n     int
	armed atomic.Bool
	sess  atomic.Pointer[Session]
	wg    sync.WaitGroup
}

func (c *shutsDownOnWrite) Write(b []byte) (int, error) {
	n, err := c.ReadWriteCloser.Write(b)
	if err == nil && len(b) == c.n && c.armed.CompareAndSwap(true, false) {
		s := c.sess.Load()
		c.wg.Add(1)
		go func() { defer c.wg.Done(); _ = s.Close() }()
		<-s.CloseChan()
	}
	return n, err
}

// A Write whose frame was written succeeds even when the session shuts
// down before the writer wakes (sandmux patch): upstream picked at random
// between the frame's result and the shutdown, and a server told that
// its reply to a stream failed (its client had the reply, and had
// finished and closed its session at once) reset the target, which took
// the client's clean end for a failure.
func TestWriteSentBeforeShutdownSucceeds(t *testing.T) {
	for i := range 20 {
		c, s := testConnPipe(t)
		conn := &shutsDownOnWrite{ReadWriteCloser: c, n: len("reply")}
		client, server := testClientServerConfig(t, conn, s, testConfNoKeepAlive(), testConfNoKeepAlive())
		conn.sess.Store(client)
		st, err := client.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		var reader sync.WaitGroup
		reader.Add(1)
		go func() {
			defer reader.Done()
			// The peer reads, so that the pipe takes the frame.
			if peer, err := server.AcceptStream(); err == nil {
				_, _ = io.Copy(io.Discard, peer)
			}
		}()
		conn.armed.Store(true)
		if n, err := st.Write([]byte("reply")); err != nil || n != len("reply") {
			t.Fatalf("run %d: a write whose frame went out returned %d, %v", i, n, err)
		}
		conn.wg.Wait()
		_ = server.Close()
		reader.Wait()
	}
}
