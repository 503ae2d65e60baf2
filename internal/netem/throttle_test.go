package netem

import (
	"testing"
	"time"
)

// TestThrottle: a path slowed to a trickle carries each byte once and in
// order, no faster than the trickle, and is fast again once it recovers.
func TestThrottle(t *testing.T) {
	const rate = 256 << 10 // bytes per second, each way
	srv := startServer(t, echo)
	p := startProxy(t, Config{Target: srv.addr()})
	c := dial(t, p.Addr())
	roundTrip(t, c, []byte("before"))

	p.Throttle(rate)
	msg := randomBytes(7, rate/2)
	start := time.Now()
	roundTrip(t, c, msg)
	slow := time.Since(start)
	// Each way carries msg at rate, the replies overlapping the requests
	// but for the last chunk read (up to 64 KiB).
	if floor := time.Duration(float64(len(msg)-64<<10) / rate * float64(time.Second)); slow < floor {
		t.Fatalf("%d bytes echoed over a %d B/s trickle in %v, want ≥ %v", len(msg), rate, slow, floor)
	}

	p.Throttle(0)
	start = time.Now()
	roundTrip(t, c, randomBytes(8, 4<<20))
	t.Logf("%d KiB echoed at %d KiB/s in %v; 4 MiB after the recovery in %v", len(msg)>>10, rate>>10, slow, time.Since(start))
}
