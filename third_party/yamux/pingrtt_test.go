package yamux

import (
	"io"
	"testing"
	"time"
)

// pathDelay is the one-way delay the pong takes in TestPingRTTNotBelowPath.
const pathDelay = 40 * time.Millisecond

// slowReturn passes every write on at once but returns from a ping
// request's write only after hold: the pinging goroutine resumes late, as
// on a busy machine where the scheduler runs other work first.
type slowReturn struct {
	io.ReadWriteCloser
	hold time.Duration
}

func (c slowReturn) Write(p []byte) (int, error) {
	n, err := c.ReadWriteCloser.Write(p)
	if len(p) >= headerSize && header(p).MsgType() == typePing && header(p).Flags()&flagSYN != 0 {
		time.Sleep(c.hold)
	}
	return n, err
}

// delayedPong holds each ping answer back pathDelay: a path with that
// delay one way.
type delayedPong struct{ io.ReadWriteCloser }

func (c delayedPong) Write(p []byte) (int, error) {
	if len(p) >= headerSize && header(p).MsgType() == typePing && header(p).Flags()&flagACK != 0 {
		time.Sleep(pathDelay)
	}
	return c.ReadWriteCloser.Write(p)
}

// TestPingRTTNotBelowPath: a pong that arrives before the pinging
// goroutine resumes from its write still counts the time since the ping
// was sent. Timing from the write's return measured such a round trip as
// next to nothing (doctor reported 4 µs over TLS on loopback), and the
// smallest round trip of the last minute, which the window tuning uses,
// then kept every window from growing for that minute.
func TestPingRTTNotBelowPath(t *testing.T) {
	c1, c2 := testConnPipe(t)
	client, _ := testClientServerConfig(t, slowReturn{c1, 2 * pathDelay}, delayedPong{c2}, testConfNoKeepAlive(), testConfNoKeepAlive())
	rtt, err := client.Ping()
	if err != nil {
		t.Fatal(err)
	}
	if rtt < pathDelay {
		t.Fatalf("ping round trip %v, below the %v the answer took to arrive", rtt, pathDelay)
	}
	if got := client.rtt.load(); got < pathDelay {
		t.Fatalf("window tuning's round trip %v, below %v", got, pathDelay)
	}
}
