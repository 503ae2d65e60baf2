package server

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sandmux/sandmux/mux"
)

// Config configures a Server. Start from DefaultConfig.
type Config struct {
	// Target is where streams that name no target (and raw-mode
	// connections) go.
	Target string
	// Allow lists the other "host:port" targets a client may ask for.
	Allow []string
	// Token, when set, must arrive as "Authorization: Bearer <token>".
	Token string
	// DialTimeout bounds connecting to a target.
	DialTimeout time.Duration
	// MaxSessions bounds concurrent WebSockets (sandmux and raw). Resuming
	// an existing session never counts as a new one.
	MaxSessions int
	// MaxHandshakes bounds the connections still in their handshake at
	// once: accepted but not yet a session (the HTTP request, the token
	// check, the upgrade, the sandmux.v2 hello), as sshd's MaxStartups
	// bounds those not yet logged in. Anyone who can reach the port can
	// open them, each held for up to the header timeout. At the limit a
	// newcomer closes the oldest one that is not being answered (silent,
	// slow with its request, or idle between keep-alive requests) and
	// takes its place; beyond those being answered, as many again are
	// answered 503 with Retry-After once their request arrives, and the
	// rest are closed unread. Streams on a session are
	// not connections and never count. It takes effect only when the
	// http.Server uses the Server's ConnContext and ConnState.
	MaxHandshakes int
	// MaxStreams bounds concurrent streams per session. Together with the
	// stream window it bounds what one peer can make the server buffer.
	MaxStreams int
	// MaxTotalStreams bounds the streams carried at once by all sessions
	// together. Each holds a connection to its target, a file descriptor,
	// and its buffers: MaxSessions × MaxStreams alone (25,600 by default)
	// is more than many a sandbox's file descriptor limit, and a server
	// out of them can accept no connection, not even a resume.
	MaxTotalStreams int
	// MaxReceiveBuffer bounds the receive windows of all sessions
	// together beyond each stream's first (Mux.StreamWindow): what their
	// clients may send that targets have not read yet. A stream's window
	// grows (Mux.MaxStreamWindow, within its session's Mux.WindowGrowth)
	// only while this has room; once it is spent, windows stop growing
	// and senders wait for what they were granted, so the server buffers
	// at most streams × Mux.StreamWindow + MaxReceiveBuffer of client
	// data, where each session alone may hold up to Mux.SessionWindow.
	// Zero means no bound across sessions. It replaces Mux.WindowBudget.
	MaxReceiveBuffer uint64
	// MaxResumeBuffer bounds the resume buffers of all resumable
	// sessions together: bytes sent to clients and not yet acknowledged,
	// which each session may otherwise hold up to Resume.Buffer of, for as
	// long as its client does not acknowledge them (one that reads but
	// never does, or one whose WebSocket was lost). Beyond
	// Resume.MinInFlight a session sends only while this has room, and
	// otherwise waits for its own or another session's acknowledgements.
	// Zero means no bound across sessions. It replaces Resume.Budget.
	MaxResumeBuffer uint64
	// IdleTimeout closes a session that has had no stream for this long;
	// zero keeps idle sessions.
	IdleTimeout time.Duration
	// Mux tunes the yamux sessions.
	Mux mux.Config
	// ResumeGrace is how long a session whose WebSocket was lost keeps its
	// streams and unacknowledged bytes, waiting to be resumed (sandmux.v2).
	// Zero turns resumption off: only sandmux.v1 is offered.
	ResumeGrace time.Duration
	// Resume tunes resumable transports (buffer, ack interval); its Grace
	// is taken from ResumeGrace.
	Resume mux.ResumeConfig
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// OnHandshake, if set, is called once per WebSocket that became a
	// session (or resumed one), with its mode ("raw", "sandmux.v1",
	// "sandmux.v2", "resume") and the time from the request's arrival to
	// the session's start (upgrade, plus the hello and welcome for
	// sandmux.v2). For metrics; it must not block.
	OnHandshake func(mode string, d time.Duration)
}

// DefaultConfig returns a server that forwards to the local sshd.
func DefaultConfig() Config {
	return Config{
		Target:      "127.0.0.1:22",
		DialTimeout: 10 * time.Second,
		MaxSessions: 100,
		// Far above what a burst of ssh and scp processes, each with a
		// WebSocket of its own, keeps in their handshake at once (a few
		// round trips each), and far below what the file descriptors
		// and memory of a sandbox bear.
		MaxHandshakes: 64,
		MaxStreams:    256,
		// Far above what a user's ssh, scp and forwards keep open, and
		// within a sandbox's file descriptors (each stream holds one).
		MaxTotalStreams: 4096,
		// Ten sessions' worth of growth, where 100 sessions at their own
		// bounds could hold 25 GiB; one session, or a few, still grow
		// every window they may. cmd/sandmux lowers it on a small machine.
		MaxReceiveBuffer: 1 << 30,
		// Sixteen sessions at their own bound (64 MiB); on a long path a
		// session needs twice its bandwidth × RTT, 12 MB at 1 Gbit/s
		// and 50 ms. cmd/sandmux lowers it on a small machine.
		MaxResumeBuffer: 1 << 30,
		Mux:             mux.DefaultConfig(),
		ResumeGrace:     10 * time.Minute,
		Resume:          mux.DefaultResumeConfig(),
	}
}

// Validate reports the first unusable value.
func (c Config) Validate() error {
	if _, err := configTarget(c.Target); err != nil {
		return fmt.Errorf("%w: target: %w", ErrInvalidConfig, err)
	}
	for _, a := range c.Allow {
		if _, err := configTarget(a); err != nil {
			return fmt.Errorf("%w: allow: %w", ErrInvalidConfig, err)
		}
	}
	if c.MaxSessions <= 0 || c.MaxStreams <= 0 {
		return fmt.Errorf("%w: --max-sessions and --max-streams must be positive", ErrInvalidConfig)
	}
	if c.MaxTotalStreams <= 0 {
		return fmt.Errorf("%w: --max-total-streams must be positive", ErrInvalidConfig)
	}
	if c.MaxHandshakes <= 0 {
		return fmt.Errorf("%w: --max-handshakes must be positive", ErrInvalidConfig)
	}
	if c.IdleTimeout < 0 {
		return fmt.Errorf("%w: idle timeout must not be negative", ErrInvalidConfig)
	}
	if c.ResumeGrace < 0 {
		return fmt.Errorf("%w: resume grace must not be negative", ErrInvalidConfig)
	}
	if c.DialTimeout <= 0 {
		return fmt.Errorf("%w: dial timeout must be positive", ErrInvalidConfig)
	}
	return c.Mux.Validate()
}

// Sentinel errors of the server package.
var (
	// ErrInvalidConfig wraps every configuration validation failure.
	ErrInvalidConfig = errors.New("invalid server config")
	// ErrServerClosed is returned by ServeHTTP callers' helpers after Close.
	ErrServerClosed = errors.New("server closed")
)
