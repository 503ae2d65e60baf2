package agent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/logflood"
	"github.com/sandmux/sandmux/mux"
)

// Agent serves proxies on a Unix socket and holds their shared sessions.
type Agent struct {
	cfg  Config
	log  *slog.Logger
	dial func(context.Context, client.Config) (*client.Session, error)
	// logLimit limits the lines of log marked logflood.Limit; Serve
	// closes it as it returns.
	logLimit *logflood.Limiter

	started time.Time

	mu      sync.Mutex
	entries map[string]*entry
	streams int
	// pending counts connections accepted whose request is not answered
	// yet: a proxy waiting for its session, or one whose request has not
	// arrived. The agent never exits under one.
	pending int
	// served is set by the first connection: until then the agent waits
	// at least startTimeout for the proxy that started it.
	served bool
	// exiting is set when reap decides to exit; admit refuses from then.
	exiting bool
	idle    time.Time // when the last stream or request ended

	stop     chan struct{} // closed by a stop request
	stopOnce sync.Once
	// stoppers are the connections of stop requests, closed only as
	// Serve returns: their end tells `agent --stop` that every session
	// is closed, not just that the socket is gone.
	stoppers []net.Conn
}

// New validates cfg and returns an Agent; Serve runs it.
func New(cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = mux.DiscardLogger()
	}
	// Lines a peer can repeat at will (refusals, bad requests) are
	// marked logflood.Limit: a flood of them is cut to a few a minute,
	// and counted in a line of its own.
	limit := logflood.Wrap(log)
	return &Agent{
		cfg: cfg, log: limit.Logger(), logLimit: limit, dial: client.Dial,
		entries: make(map[string]*entry), stop: make(chan struct{}),
	}, nil
}

// Serve listens on the socket in cfg.Dir and serves until ctx ends, a stop
// request arrives, or the agent has been idle for Persist. It then closes
// every session and waits for every goroutine it started.
func (a *Agent) Serve(ctx context.Context) error {
	if err := EnsureDir(a.cfg.Dir); err != nil {
		return err
	}
	path := SocketPath(a.cfg.Dir)
	unlock, err := holdRunLock(filepath.Join(a.cfg.Dir, RunLockName))
	if errors.Is(err, ErrAlreadyRunning) {
		return fmt.Errorf("%w on %s", ErrAlreadyRunning, path)
	}
	if err != nil {
		return err
	}
	// Released as soon as the listener is closed: the lock keeps two
	// agents from serving at once, and one that has stopped accepting may
	// take seconds to close its sessions while the next proxy starts the
	// next agent.
	unlock = sync.OnceFunc(unlock)
	defer unlock()
	// An agent of a version that takes no run lock may still be serving.
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		return fmt.Errorf("%w on %s", ErrAlreadyRunning, path)
	}
	ln, closeSocket, err := listen(path)
	if err != nil {
		return err
	}
	// From the moment the listener closes until Serve returns, the agent
	// holds StoppingName: an `agent --stop` that finds no socket
	// meanwhile (a second one, while the first waits for the sessions
	// to close) is told the agent is stopping, not that none ran.
	releaseStopping := func() {}
	closeListener := sync.OnceFunc(func() {
		release, err := holdStopping(filepath.Join(a.cfg.Dir, StoppingName))
		if err != nil {
			a.log.Warn("cannot mark the agent as stopping", "err", err)
		} else {
			releaseStopping = release
		}
		closeSocket()
	})
	a.started = time.Now()
	a.idle = a.started
	if a.cfg.OnListening != nil {
		a.cfg.OnListening()
	}
	a.log.Info("agent started", "pid", os.Getpid(), "socket", path, "persist", a.cfg.Persist, "version", a.cfg.Version)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup // every goroutine below, and every maintainer
	wg.Add(2)
	go func() {
		defer wg.Done()
		// Exiting on --persist closes the listener at once, so proxies
		// from then on find no agent and start one.
		a.reap(ctx, func() { closeListener(); cancel() })
	}()
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
		case <-a.stop:
			cancel()
		}
		closeListener()
		unlock()
	}()

	var conns sync.WaitGroup
	for {
		c, err := a.accept(ctx, ln)
		if err != nil {
			break
		}
		if !a.admit() {
			// Accepted as the agent decided to exit: closed unanswered,
			// the proxy asks again and starts a new agent.
			_ = c.Close()
			continue
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			a.handle(ctx, &wg, c)
		}()
	}
	cancel()
	closeListener()
	unlock()
	a.closeAll()
	conns.Wait()
	wg.Wait()
	a.logLimit.Close() // what it dropped is said before the last line
	a.log.Info("agent stopped")
	a.mu.Lock()
	for _, c := range a.stoppers {
		_ = c.Close()
	}
	a.stoppers = nil
	a.mu.Unlock()
	releaseStopping()
	return nil
}

// failedKeep is how long an unused session that failed for good stays
// in the agent's status.
const failedKeep = time.Minute

// reap stops the agent after Persist without streams and drops sessions
// that nobody has used for that long, and failed ones after failedKeep.
func (a *Agent) reap(ctx context.Context, stop context.CancelFunc) {
	every := time.Second
	if a.cfg.Persist > 0 {
		// At least a millisecond: under 4 ns the quarter was 0, a
		// ticker that panics (`sandmux agent --persist 1ns`).
		every = max(min(a.cfg.Persist/4, every), time.Millisecond)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		a.mu.Lock()
		idle := a.cfg.Persist > 0 && a.streams == 0 && a.pending == 0 && time.Since(a.idle) >= a.cfg.Persist &&
			(a.served || time.Since(a.started) >= startTimeout)
		if idle {
			// Decided under a.mu: a connection accepted from now on is
			// closed unanswered (admit), one admitted before is in pending.
			// The sessions are closed by Serve (closeAll), after the
			// listener: closing one whose server went silent takes seconds.
			a.exiting = true
			a.mu.Unlock()
			a.log.Info("no streams for --persist; exiting", "persist", a.cfg.Persist)
			stop()
			return
		}
		var stale []*entry
		for k, e := range a.entries {
			d := e.idleFor()
			// A session that failed for good (a wrong token, say) is
			// forgotten after failedKeep unused, however long the agent
			// persists: `sandmux status` shows why it failed meanwhile,
			// but need not list every wrong token ever tried.
			if (a.cfg.Persist > 0 && d >= a.cfg.Persist) || (d >= failedKeep && e.failedForGood()) {
				stale = append(stale, e)
				delete(a.entries, k)
			}
		}
		a.mu.Unlock()
		for _, e := range stale {
			e.log.Info("session idle for --persist; closing")
			e.retire()
		}
	}
}

func (a *Agent) closeAll() {
	a.mu.Lock()
	entries := make([]*entry, 0, len(a.entries))
	for _, e := range a.entries {
		entries = append(entries, e)
	}
	a.mu.Unlock()
	for _, e := range entries {
		e.closeSession()
	}
}

// admit counts an accepted connection as pending until its request is
// answered (done), unless the agent is exiting.
func (a *Agent) admit() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.exiting {
		return false
	}
	a.pending++
	a.served = true
	return true
}

// done counts an admitted connection's request as answered. Only a
// proxy's request (open) counts as use for --persist: `sandmux status`
// polled in a loop must not keep the agent up.
func (a *Agent) done(open bool) {
	a.mu.Lock()
	a.pending--
	if open {
		a.idle = time.Now()
	}
	a.mu.Unlock()
}

// handle serves one connection from a proxy or from `sandmux status`.
func (a *Agent) handle(ctx context.Context, wg *sync.WaitGroup, c *net.UnixConn) {
	var open bool // set once the request is known to be an open
	answered := sync.OnceFunc(func() { a.done(open) })
	defer answered()
	uid, err := peerUID(c)
	if err != nil || uid != os.Getuid() {
		a.log.Warn("refused a socket peer of another user", logflood.Limit, "peer_uid", uid, "err", err)
		_ = writeMessage(c, reply{Version: protoVersion, Error: fmt.Sprintf("%v: uid %d may not use the agent of uid %d; %s", ErrPeerRefused, uid, os.Getuid(), fixDir)})
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var req request
	if err := readMessage(c, &req); err != nil {
		// A connection closed before any request is a proxy or a
		// starting agent checking that this one answers (Ensure), not a
		// bad request.
		if !errors.Is(err, io.EOF) {
			a.log.Info("bad request on agent socket", logflood.Limit, "err", err)
		}
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	switch req.Op {
	case opStatus:
		st := a.status()
		_ = writeMessage(c, reply{Version: protoVersion, OK: true, Status: &st})
		_ = c.Close()
	case opStop:
		a.log.Info("stop requested")
		_ = writeMessage(c, reply{Version: protoVersion, OK: true})
		a.mu.Lock()
		a.stoppers = append(a.stoppers, c)
		a.mu.Unlock()
		a.stopOnce.Do(func() { close(a.stop) })
	case opOpen:
		if req.Open == nil {
			_ = writeMessage(c, reply{Version: protoVersion, Error: "open request without parameters"})
			_ = c.Close()
			return
		}
		open = true
		a.serveOpen(ctx, wg, c, req.Open, answered)
	default:
		_ = writeMessage(c, reply{Version: protoVersion, Error: fmt.Sprintf("unknown request %q (is the agent older than this proxy? run `%s`)", req.Op, stopCommand(a.cfg.StopCommand))})
		_ = c.Close()
	}
}

// serveOpen opens a stream on the shared session and splices it to the
// proxy until either ends.
// answered is called once the request is answered, so the agent counts
// the connection as a stream from then on, not as a request.
func (a *Agent) serveOpen(ctx context.Context, wg *sync.WaitGroup, c *net.UnixConn, req *OpenRequest, answered func()) {
	e, err := a.entryFor(req)
	if err != nil {
		_ = writeMessage(c, reply{Version: protoVersion, Error: err.Error()})
		_ = c.Close()
		return
	}
	requestDone := sync.OnceFunc(e.endRequest)
	defer requestDone()
	timeout := req.ConnectTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	octx, cancel := context.WithTimeout(ctx, timeout)
	var notify func(Progress)
	if req.Progress {
		notify = func(p Progress) {
			_ = writeMessage(c, reply{Version: protoVersion, Progress: &p})
		}
	}
	gone := watchGone(c, cancel)
	stream, release, sess, err := e.open(octx, ctx, wg, req.Target, req.Overflow, req.Handoff && req.Disown, notify)
	left := gone()
	cancel()
	if err != nil && left {
		// Nobody to tell: the proxy went away while it waited.
		_ = c.Close()
		return
	}
	if err != nil && ctx.Err() != nil {
		// Stopped (agent --stop, a signal) under a waiting proxy: told as
		// an open stream is, rather than as a connect timeout.
		err = errors.New(errShuttingDown)
	}
	if err != nil {
		err = trustStoreHint(e.limitHint(err, hostOr(req), sess, req.Overflow), a.cfg.StopCommand)
		var cte *connectTimeoutError
		if errors.As(err, &cte) {
			err = fmt.Errorf("could not connect to %s within %s", client.RedactURL(e.cfg.URL), timeout)
			if cte.last != nil {
				err = fmt.Errorf("%w: %w", err, cte.last)
			}
		}
		_ = writeMessage(c, reply{Version: protoVersion, Error: err.Error()})
		_ = c.Close()
		return
	}
	defer release()
	frameIn := req.FrameIn && !req.Handoff
	if err := writeMessage(c, reply{Version: protoVersion, OK: true, Handoff: req.Handoff, Detach: req.Handoff, Disown: req.Handoff && req.Disown, FrameIn: frameIn, Proxy: req.Proxy != ""}); err != nil {
		_ = stream.Close()
		_ = c.Close()
		return
	}
	a.streamDelta(+1)
	answered()
	e.streamStarted()
	requestDone()
	defer func() {
		e.streamEnded()
		a.streamDelta(-1)
	}()
	verdict := func(err error) error {
		return streamEndError(ctx, e.limitHint(err, hostOr(req), sess, req.Overflow), hostOr(req), req.URL, req.Forward)
	}
	if req.Handoff && req.Disown {
		serveDisowned(c, stream, verdict, e.log, a.cfg.StopCommand)
		return
	}
	if req.Handoff {
		serveHandoff(c, stream, verdict, a.cfg.StopCommand)
		return
	}
	fw := &framedWriter{conn: c, frameIn: frameIn, in: unframer{r: c}}
	fw.finish(verdict(mux.Splice(stream, fw)))
}

// errShuttingDown is a proxy's line when the agent stops under it.
const errShuttingDown = "the sandmux agent is shutting down"

// streamEndError words the end of a stream for the proxy's (or the
// forward's) one line.
func streamEndError(agentCtx context.Context, err error, host, url string, forward bool) error {
	if err != nil && agentCtx.Err() != nil {
		return errors.New(errShuttingDown)
	}
	if forward {
		return client.ForwardEndError(err, host, url)
	}
	return client.StreamEndError(err, host, url)
}

func hostOr(req *OpenRequest) string {
	if req.Host != "" {
		return req.Host
	}
	return client.RedactURL(req.URL)
}

// Carrying reports how many streams the agent carries now, its own
// WebSockets' included.
func (a *Agent) Carrying() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return int64(a.streams)
}

func (a *Agent) streamDelta(d int) {
	a.mu.Lock()
	a.streams += d
	if a.streams == 0 {
		a.idle = time.Now()
	}
	a.mu.Unlock()
}

// entryFor finds or creates the shared session for the request's URL and
// credentials. The key is a hash, so credentials are never kept as map
// keys or logged.
func (a *Agent) entryFor(req *OpenRequest) (*entry, error) {
	cfg := client.DefaultConfig()
	cfg.URL = req.URL
	cfg.Token = req.Token
	cfg.Header = http.Header(req.Header)
	cfg.Mux = a.cfg.Mux
	cfg.NoResume = a.cfg.NoResume
	cfg.Resume.Grace = a.cfg.ResumeTimeout
	if r := req.Resume; r != nil {
		cfg.NoResume = r.Off
		if r.Timeout > 0 {
			cfg.Resume.Grace = r.Timeout
		}
	}
	cfg.Backoff = a.cfg.Backoff
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: req.Insecure} //nolint:gosec // the user's --insecure
	if req.CAPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(req.CAPEM)) {
			return nil, errors.New("--ca holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	cfg.TLS = tc
	if req.Proxy != "" {
		p, err := url.Parse(req.Proxy)
		if err != nil {
			return nil, errors.New("the proxy sent an HTTP proxy that is not a URL") // its text may hold a password
		}
		cfg.Proxy = p
	}
	if req.ProxyCAPEM != "" {
		// Added to the agent's own roots: SSL_CERT_FILE and
		// SSL_CERT_DIR replace the system's files and directories for a
		// --no-agent proxy, but an agent serves proxies from many
		// environments, and trusting the store it started with too
		// keeps one that sets only a bundle working.
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(req.ProxyCAPEM)) {
			return nil, errors.New("the proxy's SSL_CERT_FILE and SSL_CERT_DIR hold no PEM certificate: name the https:// proxy's CA there, as PEM")
		}
		cfg.ProxyTLS = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key := sessionKey(req, cfg.NoResume, cfg.Resume.Grace)
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.entries[key]
	if !ok {
		log := a.log.With("url", client.RedactURL(req.URL), "session", logID())
		cfg.Logger = log
		e = newEntry(cfg, req.Host, log, a.cfg.Backoff, a.dial)
		a.entries[key] = e
	}
	// Counted now, under a.mu, so that reap cannot drop the entry from
	// here until the caller's stream has started (or failed): opening it
	// may take longer than --persist. The caller calls endRequest.
	e.beginRequest()
	return e, nil
}

// logID names a session in the agent's log: random, so that it tells
// sessions apart and says nothing else. A prefix of the session's key, as
// it was, hashes the token with no salt: from a log pasted into a bug
// report, anyone could test guesses at a weak token offline.
func logID() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24)
	return hex.EncodeToString(b[:])
}

// sessionKey identifies a session by everything that changes what the
// server sees (URL, headers, token and TLS trust) and by its resumption
// settings, so that a proxy's --no-resume or --resume-timeout is never
// overruled by a session another proxy started.
func sessionKey(req *OpenRequest, noResume bool, resumeTimeout time.Duration) string {
	h := sha256.New()
	fmt.Fprintf(h, "%q|%q|%q|%t|%t|%d|%q|%q|", sameServerURL(req.URL), req.Token, req.CAPEM, req.Insecure, noResume, resumeTimeout, req.Proxy, req.ProxyCAPEM)
	names := make([]string, 0, len(req.Header))
	for k := range req.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(h, "%q=%q|", k, req.Header[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sameServerURL is u with its scheme and host name in lower case, as DNS,
// TLS and HTTP compare them: `sandmux proxy ABC` and ssh's %h, which
// OpenSSH lowercases (`ssh ABC` passes abc), reach the same sandbox and
// share its session. The rest stays as given: a path or a query (a
// gateway's /sandbox/{host}) may tell sandboxes apart by case, and so may
// an IPv6 zone (an interface name).
func sameServerURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	host, tail := rest[:end], rest[end:]
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host, tail = host[:i], host[i:]+tail
	}
	return strings.ToLower(scheme) + "://" + strings.ToLower(host) + tail
}

// status snapshots the agent.
func (a *Agent) status() Status {
	a.mu.Lock()
	entries := make([]*entry, 0, len(a.entries))
	for _, e := range a.entries {
		entries = append(entries, e)
	}
	st := Status{PID: os.Getpid(), Version: a.cfg.Version, Started: a.started, Socket: SocketPath(a.cfg.Dir), Streams: a.streams, SOCKS: true, HTTPSProxy: true}
	a.mu.Unlock()
	for _, e := range entries {
		st.Sessions = append(st.Sessions, e.status())
	}
	sort.Slice(st.Sessions, func(i, j int) bool { return st.Sessions[i].URL < st.Sessions[j].URL })
	return st
}
