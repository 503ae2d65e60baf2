package netem

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
)

// TestHandshake checks Config.Handshake with lower bounds, as TestDelay
// does: a client that speaks first waits 4×Delay for its first answer
// (one RTT more than without the handshake), a client that waits for the
// server's greeting waits 4×Delay too, only the first bytes are held, and
// the target is dialled only when a real server's accept would return.
func TestHandshake(t *testing.T) {
	const delay = 100 * time.Millisecond

	t.Run("client speaks first", func(t *testing.T) {
		srv := startServer(t, echo)
		p := startProxy(t, Config{Target: srv.addr(), Delay: delay, Handshake: true})
		start := time.Now()
		c := dial(t, p.Addr())
		roundTrip(t, c, []byte("hello"))
		first := time.Since(start)
		start = time.Now()
		roundTrip(t, c, []byte("again"))
		second := time.Since(start)
		t.Logf("first round trip %v, second %v", first, second)
		if first < 4*delay {
			t.Fatalf("first round trip took %v, want ≥ %v (handshake RTT + data RTT)", first, 4*delay)
		}
		if second < 2*delay {
			t.Fatalf("second round trip took %v, want ≥ %v", second, 2*delay)
		}
		// The floor is absolute, so a later round trip pays the delay
		// only; half of the first one's 4×Delay is slack for a busy
		// machine, not a speed requirement.
		if second >= first {
			t.Fatalf("second round trip took %v, no less than the first (%v): the handshake was charged again", second, first)
		}
	})

	t.Run("server speaks first", func(t *testing.T) {
		greeting := []byte("SSH-2.0-greeting\r\n")
		srv := startServer(t, func(c *net.TCPConn) {
			if _, err := c.Write(greeting); err == nil {
				echo(c)
			}
		})
		for _, hs := range []bool{false, true} {
			p := startProxy(t, Config{Target: srv.addr(), Delay: delay, Handshake: hs})
			start := time.Now()
			c := dial(t, p.Addr())
			c.SetDeadline(time.Now().Add(ioTimeout))
			got := make([]byte, len(greeting))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("Handshake %v: read greeting: %v", hs, err)
			}
			wait := time.Since(start)
			t.Logf("Handshake %v: greeting after %v", hs, wait)
			want := delay
			if hs {
				want = 4 * delay
			}
			if wait < want {
				t.Fatalf("Handshake %v: greeting after %v, want ≥ %v", hs, wait, want)
			}
		}
	})
	t.Run("target dialled after the handshake", func(t *testing.T) {
		// A target that works before it speaks, as sshd forks and
		// re-executes itself per connection: on a real path that work
		// starts at accept, 3×Delay after the client's SYN, so it adds to
		// the 4×Delay wait for the greeting instead of hiding inside it.
		const work = delay
		greeting := []byte("SSH-2.0-greeting\r\n")
		accepted := make(chan time.Time, 1)
		srv := startServer(t, func(c *net.TCPConn) {
			accepted <- time.Now()
			select {
			case <-time.After(work):
			case <-t.Context().Done():
				return
			}
			_, _ = c.Write(greeting)
		})
		p := startProxy(t, Config{Target: srv.addr(), Delay: delay, Handshake: true})
		start := time.Now()
		c := dial(t, p.Addr())
		c.SetDeadline(time.Now().Add(ioTimeout))
		got := make([]byte, len(greeting))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("read greeting: %v", err)
		}
		wait := time.Since(start)
		at := (<-accepted).Sub(start)
		t.Logf("target accepted after %v, greeting after %v", at, wait)
		if at < 3*delay {
			t.Fatalf("target accepted after %v, want ≥ %v (the client's ACK arrives at 3×Delay)", at, 3*delay)
		}
		if wait < 4*delay+work {
			t.Fatalf("greeting after %v, want ≥ %v (handshake, the target's work, then Delay)", wait, 4*delay+work)
		}
	})

	t.Run("refused dial resets the client", func(t *testing.T) {
		p := startProxy(t, Config{Target: testutil.FreeAddr(t), Delay: delay, Handshake: true})
		start := time.Now()
		c := dial(t, p.Addr())
		c.SetDeadline(time.Now().Add(ioTimeout))
		_, err := c.Read(make([]byte, 1))
		wait := time.Since(start)
		t.Logf("read after %v: %v", wait, err)
		// A reset, not the deadline: the proxy gives up as soon as its
		// dial is refused.
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read: %v, want a connection reset", err)
		}
		if wait < 3*delay {
			t.Fatalf("reset after %v, want ≥ %v: the dial must wait for the handshake", wait, 3*delay)
		}
	})
}
