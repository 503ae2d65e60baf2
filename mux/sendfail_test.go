package mux_test

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandmux/sandmux/mux"
)

// errSendBroken is the connection's write error in the tests below.
var errSendBroken = errors.New("test connection cannot send")

// sendBreakable is a connection whose writes fail with errSendBroken once
// broken, while its reads go on: the peer's END (or a lost WebSocket)
// found by the send loop before the receive loop.
type sendBreakable struct {
	net.Conn
	broken atomic.Bool
}

func (c *sendBreakable) Write(p []byte) (int, error) {
	if c.broken.Load() {
		return 0, errSendBroken
	}
	return c.Conn.Write(p)
}

// sendFailPair opens a stream whose server side writes 1 MiB at once,
// on a pair whose client connection can be broken for sending. No
// keepalive is due during the test, so the first frame to fail is the
// stream's own.
func sendFailPair(t *testing.T) (*sendBreakable, *mux.Stream) {
	t.Helper()
	cfg := fastConfig()
	cfg.KeepAliveInterval, cfg.DeadAfter = time.Hour, time.Hour
	var conn *sendBreakable
	cli, srv := newPair(t, pairOptions{client: cfg, wrapClient: func(c net.Conn) net.Conn {
		conn = &sendBreakable{Conn: c}
		return conn
	}})
	serve(t, srv, func(st *mux.Stream) {
		if _, err := srv.ReadRequest(st); err != nil {
			return
		}
		if srv.Reply(st, mux.Reply{Status: mux.StatusOK}) == nil {
			_, _ = st.Write(make([]byte, 1<<20))
		}
	})
	return conn, openStream(t, cli)
}

// TestStreamSendFailureEndsWithSessionEnded: a stream whose own frame
// is the one the connection fails to send is told that its session
// ended, with the cause, as the other streams are. yamux hands the
// connection's write error to that frame's sender as it is: a Read
// whose window update failed returned the resumable transport's bare
// "the peer closed the session" when the server shut down
// (e2e TestServerSIGTERMDrains50Streams, one run in seven under load),
// which `sandmux proxy` took for an ordinary end of its stream rather
// than the server's close.
func TestStreamSendFailureEndsWithSessionEnded(t *testing.T) {
	check := func(t *testing.T, op string, err error) {
		t.Helper()
		if !errors.Is(err, mux.ErrSessionEnded) || !errors.Is(err, errSendBroken) {
			t.Fatalf("%s = %v, want an error wrapping %q and its cause %q", op, err, mux.ErrSessionEnded, errSendBroken)
		}
	}
	t.Run("write", func(t *testing.T) {
		conn, st := sendFailPair(t)
		conn.broken.Store(true)
		_, err := st.Write(make([]byte, 1024))
		check(t, "Write", err)
	})
	t.Run("window update after a read", func(t *testing.T) {
		conn, st := sendFailPair(t)
		buf := make([]byte, 1)
		if _, err := st.Read(buf); err != nil { // the data has started to come
			t.Fatalf("first read: %v", err)
		}
		conn.broken.Store(true)
		// The window is granted back long before 1 MiB is read, and that
		// update is what fails.
		buf = make([]byte, 4<<10)
		for {
			_, err := st.Read(buf)
			if err != nil {
				check(t, "Read", err)
				return
			}
		}
	})
}
