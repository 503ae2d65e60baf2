package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/mux"
)

// SocketName and friends are the files an agent keeps in its directory.
const (
	SocketName = "agent.sock"
	LockName   = "agent.lock" // held while a proxy starts an agent
	LogName    = "agent.log"
	// RunLockName is held by the serving agent for its whole life.
	RunLockName = "agent.run"
	// StoppingName is locked (shared) by every agent from the moment it
	// stops accepting until it has closed its sessions and exits.
	StoppingName = "agent.stopping"
	DefaultMode  = 0o700
)

// Config configures an Agent.
type Config struct {
	// Dir is the per-user directory holding the socket, lock and log; it
	// is created 0700 and must not be reachable by other users.
	Dir string
	// Persist is how long the agent stays after its last stream closed
	// (like ControlPersist); 0 keeps it forever.
	Persist time.Duration
	// Backoff spaces redials after a session is lost.
	Backoff client.Backoff
	// NoResume offers servers only the non-resumable protocol.
	NoResume bool
	// ResumeTimeout is how long a session whose WebSocket was lost keeps
	// trying to resume before its streams end.
	ResumeTimeout time.Duration
	// Mux tunes every session's yamux.
	Mux mux.Config
	// Version is reported by status.
	Version string
	// StopCommand is what the agent's lines tell a user to run to stop
	// it (with --agent-dir when its directory is not the default one);
	// empty: `sandmux agent --stop`.
	StopCommand string
	// Logger receives the agent's logs; nil discards them.
	Logger *slog.Logger
	// OnListening, if set, is called once the socket accepts
	// connections (a detached agent lets go of its starter's stderr).
	OnListening func()
}

// DefaultConfig returns an agent that persists 10 minutes and redials
// from 100 ms doubling to 10 s (2 s while streams are open).
func DefaultConfig(dir string) Config {
	return Config{
		Dir:           dir,
		Persist:       10 * time.Minute,
		Backoff:       client.DefaultBackoff(),
		ResumeTimeout: 10 * time.Minute,
		Mux:           mux.DefaultConfig(),
		Version:       "dev",
	}
}

// Validate reports the first unusable value.
func (c Config) Validate() error {
	switch {
	case c.Dir == "" || !filepath.IsAbs(c.Dir):
		return fmt.Errorf("%w: directory must be an absolute path, got %q", ErrInvalidConfig, c.Dir)
	case c.Persist < 0:
		return fmt.Errorf("%w: --persist must not be negative", ErrInvalidConfig)
	case c.ResumeTimeout <= 0:
		return fmt.Errorf("%w: --resume-timeout must be positive", ErrInvalidConfig)
	}
	if err := c.Backoff.Check(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return c.Mux.Validate()
}

// SocketPath is the agent's socket in dir.
func SocketPath(dir string) string { return filepath.Join(dir, SocketName) }

// Sentinel errors of the agent package, exported and internal, in one
// block, but for the two of one platform: ErrUnsupported
// (agent_windows.go) and errNotPollable (handoff_unix.go).
var (
	// ErrInvalidConfig wraps every configuration validation failure.
	ErrInvalidConfig = errors.New("invalid agent config")
	// ErrNotRunning means no agent answers on the socket.
	ErrNotRunning = errors.New("no sandmux agent is running")
	// ErrAlreadyRunning means another agent already serves the socket.
	ErrAlreadyRunning = errors.New("another sandmux agent is already running")
	// ErrUnsafeDir means the agent directory is reachable by other users.
	ErrUnsafeDir = errors.New("unsafe agent directory")
	// ErrPeerRefused means a socket peer runs as another user.
	ErrPeerRefused = errors.New("peer is another user")
	// ErrNoAnswer means the agent took the connection but did not answer
	// in time: it is stuck, stopped (SIGSTOP), or cannot accept (out of
	// file descriptors).
	// Its text is the line's start; noAnswerError says the rest.
	ErrNoAnswer = errors.New("the sandmux agent did not answer in time")
	// ErrStopSlow means a stopped agent was still closing its sessions
	// (or still serving its socket) when the wait for it ran out.
	ErrStopSlow = errors.New("the sandmux agent is still closing its sessions; if it does not exit, kill the `sandmux agent` process")
	// ErrStopping means the agent no longer answers because it is
	// already stopping (an earlier `agent --stop`, or --persist ran out)
	// and still closing its sessions; WaitStopped waits for it.
	ErrStopping = errors.New("the sandmux agent is already stopping")
	// errAgentLeft means the agent closed a connection without answering
	// its request: it was exiting (--persist) as the request arrived.
	errAgentLeft = errors.New("the sandmux agent closed the connection without an answer")
	// errBadFrame means the agent sent a frame this proxy does not
	// understand.
	errBadFrame = errors.New("malformed frame from agent")
	// errProxyGone is the agent's read of a framing proxy whose
	// connection ended without the EOF frame.
	errProxyGone = errors.New("the proxy's connection ended before the end of its data (the local side was cut)")
	// errMessageTooLarge means a control message exceeded maxMessage.
	errMessageTooLarge = errors.New("agent message too large")
	// errRawServer tells open to dial a session of its own.
	errRawServer = errors.New("raw server")
)
