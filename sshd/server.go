package sshd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/sandmux/sandmux/internal/logflood"
)

// Server is an SSH server for the user it runs as. Create it with New,
// give it listeners with Serve, end it with Close.
type Server struct {
	cfg Config
	log *slog.Logger
	// logLimit limits the lines of log marked logflood.Limit; Close
	// says what it dropped.
	logLimit *logflood.Limiter

	ctx    context.Context // cancelled by Close: bounds dials
	cancel context.CancelFunc

	keyMu   sync.Mutex
	hostKey *HostKey // nil until the first connection needs it

	startups startups // connections not yet logged in

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup // one per connection
}

// New validates cfg, checks that it names at least one usable public key,
// and returns a Server. It neither creates nor reads the host key.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Env = append([]string(nil), cfg.Env...)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	keys, err := loadKeys(&cfg)
	if err != nil {
		return nil, err
	}
	for _, s := range keys.skipped {
		log.Warn("skipped authorized key", "why", s)
	}
	// No key yet, and nothing that failed to be one: a sandbox whose key
	// is written after it starts (E2B's templates start their server at
	// build time, and the laptop writes its key into each new sandbox).
	// The file is read at every login, so logins work once it is there.
	waiting := keys.usable() == 0 && len(keys.keys) == 0 && len(keys.skipped) == 0 && cfg.AuthorizedKeysFile != ""
	if waiting {
		log.Warn("no authorized key yet: logins are refused until one is written to the file, which is read at every login", "file", cfg.AuthorizedKeysFile)
	}
	if keys.usable() == 0 && !waiting {
		var where []string
		if cfg.AuthorizedKeys != "" {
			where = append(where, "the authorized keys text")
		}
		if cfg.AuthorizedKeysFile != "" {
			where = append(where, cfg.AuthorizedKeysFile)
		}
		return nil, fmt.Errorf("%w: no usable public key in %s", ErrNoAuthorizedKeys, strings.Join(where, " or "))
	}
	// Keys may all come from the text (SANDMUX_AUTHORIZED_KEYS), with the
	// file not there (yet: it is read at every login).
	file := cfg.AuthorizedKeysFile
	if keys.fileMissing {
		file += " (not there; read again at every login)"
	}
	if !waiting {
		log.Info("authorized keys", "file", file, "from_text", cfg.AuthorizedKeys != "", "keys", keys.usable())
	}
	// Lines a peer can repeat at will (a refused login, a refused
	// forward) are marked logflood.Limit: on a public address a
	// stranger's loop is cut to a few a minute, and counted in a line of
	// its own.
	limit := logflood.Wrap(log)
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, log: limit.Logger(), logLimit: limit,
		startups: startups{limit: cfg.MaxStartups},
		ctx:      ctx, cancel: cancel,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[net.Conn]struct{}),
	}, nil
}

// Serve accepts connections on ln until Close, then returns
// ErrServerClosed; any other accept failure is returned as is. Serve
// closes ln.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		_ = ln.Close()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of descriptors or a transient failure: wait, as
				// net/http does, instead of spinning or giving up.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "in", backoff)
				select {
				case <-time.After(backoff):
				case <-s.ctx.Done():
				}
				continue
			}
			return fmt.Errorf("sshd accept: %w", err)
		}
		backoff = 0
		if !s.track(nc) {
			_ = nc.Close()
			return ErrServerClosed
		}
		go func() {
			defer s.wg.Done()
			defer s.untrack(nc)
			s.serveConn(nc)
		}()
	}
}

// Close stops every listener, ends every connection (programs still
// running get SIGHUP, then SIGKILL after HangupGrace) and waits until
// every goroutine of the server has returned.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		_ = ln.Close()
	}
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	// Last, once every connection's lines are written: the count of
	// lines dropped must not wait out its minute in a process about to
	// exit.
	s.logLimit.Close()
	return nil
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track registers a connection (and one wg count) unless the server is
// closed.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	_ = c.Close()
}

// loadHostKey returns the host key, loading or generating it on first
// use. A failure is not remembered: the next connection tries again.
func (s *Server) loadHostKey() (*HostKey, error) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if s.hostKey != nil {
		return s.hostKey, nil
	}
	k, err := LoadHostKey(s.cfg.StateDir)
	if err != nil {
		return nil, err
	}
	verb := "loaded"
	if k.Generated {
		verb = "generated"
	}
	s.log.Info("host key "+verb, "fingerprint", k.Fingerprint(), "path", k.Path)
	s.hostKey = k
	return k, nil
}

// conn is one authenticated connection.
type conn struct {
	srv   *Server
	sconn *ssh.ServerConn
	log   *slog.Logger
	perms *ssh.Permissions

	noMoreSessions atomic.Bool // no-more-sessions@openssh.com received
	wg             sync.WaitGroup
}

// noPortForwarding reports whether the key's authorized_keys line said
// no-port-forwarding.
func (c *conn) noPortForwarding() bool {
	_, ok := c.perms.Extensions[extNoPortForwarding]
	return ok
}

// serveConn runs one connection from handshake to its end.
func (s *Server) serveConn(nc net.Conn) {
	log := s.log.With("remote", nc.RemoteAddr().String())
	ok, waiting, report := s.startups.admit(time.Now())
	if !ok {
		if report > 0 {
			log.Warn("connections dropped: too many not yet logged in (MaxStartups); the next such report comes a minute later at the earliest", "dropped", report, "waiting", waiting, "max_startups", s.cfg.MaxStartups.String())
		}
		return
	}
	loggedIn := sync.OnceFunc(s.startups.done)
	defer loggedIn()
	hk, err := s.loadHostKey()
	if err != nil {
		log.Error("no host key; refusing the connection", logflood.Limit, "err", err)
		return
	}
	var offered []string // fingerprints of refused keys, for the log
	var user string
	var keys *keySet
	cfg := &ssh.ServerConfig{
		MaxAuthTries:  s.cfg.MaxAuthTries,
		ServerVersion: s.cfg.ServerVersion,
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if keys == nil {
				// Once per connection, so that edits to the file apply
				// to the next login.
				ks, err := loadKeys(&s.cfg)
				if err != nil {
					log.Warn("cannot read authorized keys", logflood.Limit, "err", err)
				}
				for _, why := range ks.skipped {
					log.Debug("skipped authorized key", "why", why)
				}
				keys = ks
			}
			if k := keys.find(key); k != nil {
				return k.permissions(), nil
			}
			offered = append(offered, ssh.FingerprintSHA256(key))
			user = meta.User()
			return nil, errKeyNotAuthorized
		},
	}
	cfg.AddHostKey(hk.Signer)
	_ = nc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	sconn, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		var authErr *ssh.ServerAuthError
		switch {
		case errors.As(err, &authErr) && keys != nil && len(keys.skipped) > 0:
			// The key offered may be one of those skipped, added since
			// start-up (when skips are warned of): say why here.
			log.Warn("ssh login refused; some authorized keys were skipped", logflood.Limit, "user", user, "keys_offered", offered, "skipped", keys.skipped)
		case errors.As(err, &authErr):
			log.Info("ssh login refused", logflood.Limit, "user", user, "keys_offered", offered, "err", err)
		default:
			log.Debug("ssh handshake failed", "err", err)
		}
		return
	}
	_ = nc.SetDeadline(time.Time{})
	loggedIn()
	c := &conn{srv: s, sconn: sconn, perms: sconn.Permissions}
	c.log = log.With("user", sconn.User(), "key", c.perms.Extensions[extFingerprint])
	c.log.Info("ssh login")
	c.wg.Go(func() { c.globalRequests(reqs) })
	c.channels(chans)
	// The connection is gone: every channel's requests end too.
	_ = sconn.Close()
	c.wg.Wait()
	c.log.Debug("ssh connection closed")
}

// channels starts a goroutine for each channel the client opens, until
// the connection ends; the caller waits for them (c.wg).
func (c *conn) channels(chans <-chan ssh.NewChannel) {
	sessions := 0
	for nch := range chans {
		switch nch.ChannelType() {
		case "session":
			// OpenSSH's ssh sends no-more-sessions@openssh.com right after
			// opening its session channel, but x/crypto/ssh hands global
			// requests and channel opens over on different Go channels: the
			// request can be seen first. Refuse only sessions after the
			// first one, or ssh's own session would be refused.
			if c.noMoreSessions.Load() && sessions > 0 {
				_ = nch.Reject(ssh.Prohibited, "no more sessions")
				continue
			}
			sessions++
			c.wg.Go(func() { c.session(nch) })
		case "direct-tcpip":
			c.wg.Go(func() { c.directTCPIP(nch) })
		default:
			_ = nch.Reject(ssh.UnknownChannelType, "channel type "+nch.ChannelType()+" is not supported")
		}
	}
}

// globalRequests answers connection-level requests until the connection
// ends. Remote forwarding (tcpip-forward) is not offered.
func (c *conn) globalRequests(reqs <-chan *ssh.Request) {
	for req := range reqs {
		switch req.Type {
		case "no-more-sessions@openssh.com":
			c.noMoreSessions.Store(true)
			_ = req.Reply(true, nil)
		case "keepalive@openssh.com":
			// Any answer proves liveness; OpenSSH's sshd answers failure.
			_ = req.Reply(false, nil)
		case "tcpip-forward", "streamlocal-forward@openssh.com":
			// The client only prints "remote port forwarding failed":
			// the reason is for the server's log.
			c.log.Info("refused remote forwarding (ssh -R): the embedded server does not support it; run sshd and sandmux server --ssh external for it", logflood.Limit, "type", req.Type)
			_ = req.Reply(false, nil)
		default:
			c.log.Debug("refused global request", "type", req.Type)
			_ = req.Reply(false, nil)
		}
	}
}
