package netem

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestHandshake checks Config.Handshake with lower bounds, as TestDelay
// does: a client that speaks first waits 4×Delay for its first answer
// (one RTT more than without the handshake), a client that waits for the
// server's greeting waits 4×Delay too, and only the first bytes are held.
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
}
