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
}

func (c Config) validate() error {
	switch {
	case c.Target == "":
		return errors.New("netem: Config.Target is empty")
	case c.Delay < 0:
		return errors.New("netem: Config.Delay is negative")
	case c.MaxInFlight < 0:
		return errors.New("netem: Config.MaxInFlight is negative")
	}
	return nil
}

func (c Config) maxInFlight() int {
	if c.MaxInFlight == 0 {
		return DefaultMaxInFlight
	}
	return c.MaxInFlight
}
