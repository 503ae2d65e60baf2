package mux

import (
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The peer sends its reply and its FIN, then closes; this side writes (its
// upload still going) and the peer's kernel answers with a reset. The
// reply and its end were whole: a TCP reader reads them and EOF (the
// kernel tells the reset, as EPIPE, to the writer), and so must Direct.
func TestDirectFinThenResetReadsEOF(t *testing.T) {
	for _, writerTakes := range []bool{false, true} {
		x, y := tcpPair(t)
		dy := Direct(y)
		if _, err := x.Write([]byte("reply")); err != nil {
			t.Fatal(err)
		}
		_ = x.Close() // FIN, nothing unread
		if !pollUntil(time.Minute, func() bool { return tcpState(t, y) == 8 /* CLOSE_WAIT */ }) {
			t.Fatal("the FIN never arrived")
		}
		_, _ = dy.Write([]byte("more upload")) // answered by a reset
		if !pollUntil(time.Minute, func() bool { return tcpState(t, y) == tcpClosed }) {
			t.Fatal("the reset never arrived")
		}
		if writerTakes {
			if _, err := dy.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
				t.Fatalf("write after the reset: %v, want EPIPE", err)
			}
		}
		b, err := io.ReadAll(dy)
		if string(b) != "reply" || err != nil {
			t.Errorf("writer takes the error %v: read %q, then %v; want the reply and EOF", writerTakes, b, err)
		}
	}
}

func tcpState(t *testing.T, c syscall.Conn) (state uint8) {
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	_ = rc.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err == nil {
			state = info.State
		}
	})
	return state
}
