package mux

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/hashicorp/yamux"
)

// Config tunes a session. Both ends should use the same values; only the
// window must be large on both ends for throughput.
type Config struct {
	// StreamWindow is the receive window a stream starts with. A stream
	// can move at most one window per round trip (512 KiB is 10 MiB/s at
	// 50 ms) until its window grows (MaxStreamWindow). A window granted
	// cannot be taken back, so every open stream, idle or not, holds its
	// window of the session's (SessionWindow): small, so that idle streams
	// leave the rest to the busy ones. With a server's default 256 streams,
	// 255 idle ones hold 127.5 MiB of 512 KiB, and a busy one can still
	// grow to MaxStreamWindow (at 2 MiB, 128 idle streams filled the
	// session's window, and every stream opened after them was held to
	// 256 KiB per round trip: 5 MB/s at 50 ms). Memory grows only with
	// unread data.
	StreamWindow uint32
	// SpareStreamWindow is the window a stream starts with instead, while
	// the session has room to spare: its streams hold, with this one, no
	// more than an eighth of SessionWindow (32 MiB of 256: the first
	// streams of a session, or a stream opened beside a few idle ones).
	// From 512 KiB a window takes four doublings, a round trip or more
	// each, to cover the 6 MB of a 1 Gbit/s path at 50 ms; from 4 MiB one.
	// Many idle streams still start at StreamWindow. Zero (or any value
	// up to StreamWindow), or no SessionWindow, turns it off.
	SpareStreamWindow uint32
	// MaxStreamWindow is how far a stream's window may grow while the
	// window, not its reader, holds it back: it doubles whenever the
	// reader drained more than half of it within two round trips (the
	// smallest recent ping), that is, read faster than a quarter of what
	// the window allows (patched yamux, third_party/yamux/autotune.go).
	// Windows do not shrink while a stream is open.
	MaxStreamWindow uint32
	// WindowGrowth caps how far all of a session's streams together may
	// grow beyond StreamWindow; a stream gives its growth back once it is
	// closed and drained. A session so buffers at most streams ×
	// StreamWindow + WindowGrowth of unread data. Zero turns growth off.
	WindowGrowth uint64
	// SessionWindow caps what all of a session's open streams together
	// hold granted to the peer or received and unread, as a connection's
	// window would (yamux has none): the memory a session's stalled readers
	// can make it hold. Every stream may still hold 256 KiB, so no stream
	// waits for another's reader; one held back is granted more at its
	// next read, once the others have been read or closed. Zero means no
	// cap: streams × (window) + WindowGrowth.
	SessionWindow uint64
	// WindowBudget, shared by the Configs of several sessions (a
	// server's), bounds what their windows grow beyond StreamWindow,
	// spare starts included, together, within each one's WindowGrowth:
	// under its pressure windows stop growing, and a stream's growth goes
	// back when it closes and is drained, or its session ends. Nil means
	// each session is bounded alone.
	WindowBudget *WindowBudget
	// MaxFrame caps each data frame. Frames are sized to the path (see
	// Session.frameSize) so that an interactive keystroke never queues
	// behind more than about a millisecond of one frame of bulk data;
	// this is the size on a fast path, where fewer, larger frames cost
	// less CPU per byte.
	MaxFrame int
	// KeepAliveInterval is how often an idle session is pinged.
	KeepAliveInterval time.Duration
	// DeadAfter closes a session that received no byte at all for this
	// long. Pings keep an idle session busy, so this only fires when the
	// path is dead. Zero means 1.5×KeepAliveInterval, which detects a
	// frozen network within 2×KeepAliveInterval.
	DeadAfter time.Duration
	// WriteTimeout bounds how long the transport may take no write while
	// a frame waits for it: the patched yamux counts it from the send
	// loop's last completed write (third_party/yamux/writeprogress.go),
	// so a frame queued behind other streams on a slow uplink that keeps
	// moving does not fail; a stuck connection (a peer that stopped
	// reading) ends the session about this long after its last write.
	WriteTimeout time.Duration
	// StreamOpenTimeout bounds the wait for the peer to acknowledge a new
	// stream.
	StreamOpenTimeout time.Duration
	// StreamCloseTimeout resets a stream that stays half-closed this long
	// without the peer closing its side, so a peer that never answers a
	// FIN cannot pin memory.
	StreamCloseTimeout time.Duration
	// HeaderTimeout bounds reading a stream header; twice it, the wait
	// for its reply (the server may spend its dial timeout first), which
	// on a resumable session is at least the grace and a minute.
	HeaderTimeout time.Duration
	// AcceptBacklog is how many opened streams may wait to be accepted.
	AcceptBacklog int
}

// WindowBudget is a bound on the window growth of several sessions
// together (Config.WindowBudget): the patched yamux's, which reserves
// growth from it before granting it, so nothing granted is taken back.
type WindowBudget = yamux.WindowBudget

// NewWindowBudget returns a WindowBudget of limit bytes; zero means no
// bound (it only counts).
func NewWindowBudget(limit uint64) *WindowBudget { return yamux.NewWindowBudget(limit) }

// DefaultConfig returns the tuned defaults described in DESIGN.md.
func DefaultConfig() Config {
	return Config{
		StreamWindow:       512 << 10,
		SpareStreamWindow:  4 << 20,
		MaxStreamWindow:    64 << 20,
		WindowGrowth:       96 << 20,
		SessionWindow:      256 << 20,
		MaxFrame:           256 << 10,
		KeepAliveInterval:  15 * time.Second,
		WriteTimeout:       45 * time.Second,
		StreamOpenTimeout:  30 * time.Second,
		StreamCloseTimeout: 5 * time.Minute,
		HeaderTimeout:      10 * time.Second,
		AcceptBacklog:      256,
	}
}

// Validate reports the first unusable value.
func (c Config) Validate() error {
	switch {
	case c.StreamWindow < 256<<10:
		return fmt.Errorf("%w: stream window %d is below yamux's minimum of 262144", ErrInvalidConfig, c.StreamWindow)
	case c.MaxStreamWindow < c.StreamWindow:
		return fmt.Errorf("%w: max stream window %d is below the stream window %d; raise it or lower the stream window", ErrInvalidConfig, c.MaxStreamWindow, c.StreamWindow)
	case c.SpareStreamWindow > c.MaxStreamWindow:
		return fmt.Errorf("%w: spare stream window %d is above the max stream window %d; lower it, or set 0 to turn it off", ErrInvalidConfig, c.SpareStreamWindow, c.MaxStreamWindow)
	case c.SessionWindow != 0 && c.SessionWindow < uint64(c.MaxStreamWindow):
		return fmt.Errorf("%w: session window %d is below the max stream window %d; raise it or set 0 for no cap", ErrInvalidConfig, c.SessionWindow, c.MaxStreamWindow)
	case c.MaxFrame < 1024:
		return fmt.Errorf("%w: max frame %d is below 1024", ErrInvalidConfig, c.MaxFrame)
	case c.KeepAliveInterval <= 0:
		return fmt.Errorf("%w: keepalive interval must be positive", ErrInvalidConfig)
	case c.KeepAliveInterval > math.MaxInt64/3:
		// deadAfter's 1.5× would overflow into a negative limit, which
		// drops the session at its first check.
		return fmt.Errorf("%w: keepalive interval %v is too long", ErrInvalidConfig, c.KeepAliveInterval)
	case c.DeadAfter < 0:
		return fmt.Errorf("%w: dead-after must not be negative", ErrInvalidConfig)
	case c.WriteTimeout <= 0, c.HeaderTimeout <= 0, c.StreamOpenTimeout <= 0:
		return fmt.Errorf("%w: write, header and stream-open timeouts must be positive", ErrInvalidConfig)
	case c.StreamCloseTimeout < 0:
		return fmt.Errorf("%w: stream close timeout must not be negative", ErrInvalidConfig)
	case c.AcceptBacklog <= 0:
		return fmt.Errorf("%w: accept backlog must be positive", ErrInvalidConfig)
	}
	return nil
}

// deadAfter resolves the zero default.
func (c Config) deadAfter() time.Duration {
	if c.DeadAfter > 0 {
		return c.DeadAfter
	}
	return c.KeepAliveInterval * 3 / 2
}

// yamuxConfig maps c onto yamux. yamux's own keepalive is off: Session runs
// its own so that it can record the round-trip time and judge liveness by
// every byte received rather than by one ping that may queue behind data.
func (c Config) yamuxConfig(log *slog.Logger) *yamux.Config {
	maxWindow, spare := c.MaxStreamWindow, c.SpareStreamWindow
	if c.WindowGrowth == 0 {
		maxWindow = c.StreamWindow // yamux reads a zero cap as no cap
		spare = 0                  // taken from the growth budget
	}
	return &yamux.Config{
		AcceptBacklog:           c.AcceptBacklog,
		EnableKeepAlive:         false,
		KeepAliveInterval:       c.KeepAliveInterval,
		ConnectionWriteTimeout:  c.WriteTimeout,
		MaxStreamWindowSize:     maxWindow,
		StartStreamWindowSize:   c.StreamWindow,
		MaxSessionWindowGrowth:  c.WindowGrowth,
		MaxSessionReceiveWindow: c.SessionWindow,
		SpareStartWindowSize:    spare,
		WindowBudget:            c.WindowBudget,
		StreamOpenTimeout:       c.StreamOpenTimeout,
		StreamCloseTimeout:      c.StreamCloseTimeout,
		Logger:                  yamuxLogger{log: log.With("component", "yamux")},
	}
}
