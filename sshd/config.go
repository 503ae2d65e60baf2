package sshd

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"
)

// Config configures a Server. Start from DefaultConfig; a Config is never
// modified by the Server.
type Config struct {
	// StateDir holds the host key (HostKeyFile). It is created (0700) and
	// the key generated the first time a connection needs it, not when the
	// server starts: sandbox snapshots clone the disk and memory of a
	// template, so every sandbox must make its own key.
	StateDir string

	// AuthorizedKeysFile is an OpenSSH authorized_keys file. It is read
	// again for every connection, so keys added or removed take effect on
	// the next login. A missing file holds no keys.
	AuthorizedKeysFile string
	// AuthorizedKeys holds more keys in authorized_keys format (one per
	// line), for example from an environment variable the command reads.
	AuthorizedKeys string

	// Shell runs commands (Shell -c COMMAND) and interactive logins (as a
	// login shell). It must be an absolute path.
	Shell string
	// Env is the environment sessions start from, usually the server
	// process's own. The server removes TERM, PWD, OLDPWD and the SSH_*
	// variables of another login (SSH_CLIENT, SSH_CONNECTION, SSH_TTY,
	// SSH_AUTH_SOCK, SSH_ORIGINAL_COMMAND) from it and adds
	// SSH_CLIENT, SSH_CONNECTION, SSH_TTY, TERM and the LANG, LC_* and
	// TERM variables a client sends.
	Env []string
	// Dir is the working directory of sessions and the directory SFTP
	// resolves relative paths against, usually the user's home. Empty
	// means the server process's working directory.
	Dir string

	// AllowTarget reports whether a client may open a direct-tcpip
	// channel (ssh -L, ssh -W) to hostport ("host:port") and, if so, the
	// address to connect to: the form the check allowed, so that a
	// spelling the check normalises ("127.0.0.1.:22") is not dialled as
	// written. Nil refuses every one.
	AllowTarget func(hostport string) (dial string, ok bool)
	// DialTimeout bounds connecting to a direct-tcpip target.
	DialTimeout time.Duration

	// HandshakeTimeout bounds a connection from accept until it is
	// authenticated.
	HandshakeTimeout time.Duration
	// MaxAuthTries bounds authentication attempts per connection.
	MaxAuthTries int
	// MaxStartups bounds connections not yet logged in, as OpenSSH's
	// MaxStartups does (see the type).
	MaxStartups MaxStartups
	// HangupGrace is how long a program whose channel was closed under it
	// (the client went away, or Close) has between SIGHUP and SIGKILL.
	HangupGrace time.Duration
	// ServerVersion is the SSH identification string.
	ServerVersion string

	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns a configuration with every timeout set. StateDir,
// the authorized keys, Env and AllowTarget are left to the caller.
func DefaultConfig() Config {
	return Config{
		Shell:            "/bin/sh",
		DialTimeout:      10 * time.Second,
		HandshakeTimeout: 30 * time.Second,
		MaxAuthTries:     6,
		MaxStartups:      MaxStartups{Start: 10, Rate: 30, Full: 100},
		HangupGrace:      2 * time.Second,
		ServerVersion:    "SSH-2.0-sandmux",
	}
}

// Validate reports the first unusable value. It does not look at the
// authorized keys themselves: New does.
func (c Config) Validate() error {
	switch {
	case c.StateDir == "":
		return fmt.Errorf("%w: no state directory for the host key", ErrInvalidConfig)
	case c.AuthorizedKeysFile == "" && c.AuthorizedKeys == "":
		return ErrNoAuthorizedKeys
	case c.Shell == "" || !filepath.IsAbs(c.Shell):
		return fmt.Errorf("%w: shell %q is not an absolute path", ErrInvalidConfig, c.Shell)
	case c.DialTimeout <= 0:
		return fmt.Errorf("%w: dial timeout must be positive", ErrInvalidConfig)
	case c.HandshakeTimeout <= 0:
		return fmt.Errorf("%w: handshake timeout must be positive", ErrInvalidConfig)
	case c.MaxAuthTries <= 0:
		return fmt.Errorf("%w: max auth tries must be positive", ErrInvalidConfig)
	case !c.MaxStartups.Valid():
		return fmt.Errorf("%w: max startups %d:%d:%d must be start:rate:full with 0 < start <= full and rate 1 to 100", ErrInvalidConfig, c.MaxStartups.Start, c.MaxStartups.Rate, c.MaxStartups.Full)
	case c.HangupGrace < 0:
		return fmt.Errorf("%w: hangup grace must not be negative", ErrInvalidConfig)
	case len(c.ServerVersion) < len("SSH-2.0-") || c.ServerVersion[:8] != "SSH-2.0-":
		return fmt.Errorf("%w: server version %q must start with SSH-2.0-", ErrInvalidConfig, c.ServerVersion)
	}
	return nil
}

// Sentinel errors of the sshd package.
var (
	// ErrInvalidConfig wraps every configuration validation failure.
	ErrInvalidConfig = errors.New("invalid sshd config")
	// ErrNoAuthorizedKeys is returned by New when neither the authorized
	// keys file nor the key text holds a usable public key.
	ErrNoAuthorizedKeys = errors.New("no authorized keys")
	// ErrHostKeyTooOpen refuses a host key file that users other than
	// its owner may read or write (Unix only), as OpenSSH's sshd does.
	ErrHostKeyTooOpen = errors.New("host key is open to other users")
	// ErrServerClosed is returned by Serve after Close.
	ErrServerClosed = errors.New("sshd: server closed")
	// errKeyNotAuthorized refuses a public key that is not among the
	// authorized ones.
	errKeyNotAuthorized = errors.New("public key not authorized")
)
