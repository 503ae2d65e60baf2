package netem

import (
	"errors"
	"time"
)

// DefaultMaxInFlight is the per-direction buffering used when
// Config.MaxInFlight is zero. It is large enough that a loopback link at
// several GiB/s still keeps a 25 ms one-way delay full, so the delay, not the
// buffer, is what a benchmark measures.
const DefaultMaxInFlight = 64 << 20

// Config of a Proxy.
type Config struct {
	// Target is the "127.0.0.1:PORT" every accepted connection is forwarded to.
	Target string
	// Delay is added to each direction independently, so a round trip
	// through the proxy grows by 2×Delay.
	Delay time.Duration
	// MaxInFlight caps the bytes of buffer memory held per direction while
	// they wait out Delay; beyond it the proxy stops reading so the sender
	// feels backpressure instead of the proxy growing without bound.
	// 0 means DefaultMaxInFlight.
	MaxInFlight int
	// Rate is the bandwidth of each direction in bytes per second, shared
	// by all connections as on one link; 0 is unlimited. Bytes queue
	// before the link (up to MaxInFlight per connection), as at a
	// router, and cross it one after another before the delay. Bytes take
	// their turn on the link when read, so those a Cut drops or a freeze
	// holds have still used it; no fault test needs a rate.
	Rate int64
	// Handshake charges each new connection the TCP handshake a real path
	// would: the proxy accepts locally, so without it a connection is
	// ready at once and skips the SYN/SYN-ACK round trip. With it, the
	// proxy dials the target only 3×Delay after accept, when a real
	// server's accept would return (SYN, SYN-ACK, then the client's ACK
	// and first data), so work a target does per connection (sshd forks
	// and re-executes itself) follows the handshake instead of overlapping
	// it. No byte reaches the target before then, and none from the target
	// reaches the client before 4×Delay (the target's reply takes Delay
	// more). A client that speaks first thus waits one RTT more for its
	// first answer, and one that waits for the server's greeting (SSH) 1.5
	// RTT more plus the target's start-up, as over a real path; later
	// bytes are unaffected. A target that refuses the dial resets the
	// client at 3×Delay.
	Handshake bool
}

func (c Config) validate() error {
	switch {
	case c.Target == "":
		return errors.New("netem: Config.Target is empty")
	case c.Delay < 0:
		return errors.New("netem: Config.Delay is negative")
	case c.MaxInFlight < 0:
		return errors.New("netem: Config.MaxInFlight is negative")
	case c.Rate < 0:
		return errors.New("netem: Config.Rate is negative")
	}
	return nil
}

func (c Config) maxInFlight() int {
	if c.MaxInFlight == 0 {
		return DefaultMaxInFlight
	}
	return c.MaxInFlight
}
