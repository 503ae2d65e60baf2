package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// startTimeout bounds how long a proxy waits for an agent it started to
// answer on its socket.
const startTimeout = 10 * time.Second

// connect dials the agent's socket; ErrNotRunning when nobody answers.
func connect(ctx context.Context, dir string) (*net.UnixConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", SocketPath(dir))
	if err != nil {
		// Out of descriptors here says nothing about the agent: starting
		// another (or blaming the agent directory) would be wrong.
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			return nil, fmt.Errorf("reach the sandmux agent: this process is out of file descriptors (ulimit -n): %w", err)
		}
		// Nor does a wait that ended before the dial was tried (a
		// process starved of CPU past its deadline): "no agent running"
		// would be a guess, and a starter would start another.
		if ctx.Err() != nil {
			return nil, fmt.Errorf("reach the sandmux agent: %w", ctx.Err())
		}
		return nil, fmt.Errorf("%w (%w)", ErrNotRunning, err)
	}
	uc := c.(*net.UnixConn)
	// Checked before a byte is sent: an open carries the token, the
	// headers and the HTTP proxy's password, and a socket another user
	// holds (in a directory they made first, under /tmp say) would
	// collect them. The agent checks its peers the same way.
	uid, err := peerUID(uc)
	if err != nil || uid != myUID() {
		_ = uc.Close()
		if err != nil {
			return nil, fmt.Errorf("%w: cannot tell who holds the agent socket %s: %w", ErrPeerRefused, SocketPath(dir), err)
		}
		return nil, fmt.Errorf("%w: the agent socket %s is held by uid %d, not by you (uid %d); nothing was sent to it; %s",
			ErrPeerRefused, SocketPath(dir), uid, myUID(), fixDir)
	}
	return uc, nil
}

// myUID is this process's uid; tests replace it to play another user.
var myUID = os.Getuid

// Ensure connects to the agent in dir, starting it with start when none
// answers. Concurrent callers serialise on a lock file, so exactly one of
// them starts an agent and the others use it.
func Ensure(ctx context.Context, dir string, start func() error) (*net.UnixConn, error) {
	c, err := connect(ctx, dir)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, ErrNotRunning) {
		return nil, err
	}
	if err := EnsureDir(dir); err != nil {
		return nil, err
	}
	unlock, err := lock(ctx, filepath.Join(dir, LockName))
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Another caller may have started one while this one waited for the lock.
	if c, err := connect(ctx, dir); err == nil {
		return c, nil
	}
	// One wait for the whole start: the starter itself waits (up to
	// startTimeout) for the agent to listen or fail.
	deadline := time.Now().Add(startTimeout)
	if err := start(); err != nil {
		// Lost a race to an agent that has come up meanwhile: use it.
		if c, cerr := connect(ctx, dir); cerr == nil {
			return c, nil
		}
		return nil, fmt.Errorf("the sandmux agent could not start: %w (correct that, or use --no-agent)", err)
	}
	for {
		c, err := connect(ctx, dir)
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the sandmux agent did not come up within %s (see %s)", startTimeout, filepath.Join(dir, LogName))
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
}

// Open asks the agent in dir (started with start if absent) for a stream
// and returns it. Reads end with io.EOF when the server closed the stream
// and with a *StreamError when it was cut; CloseWrite half-closes.
func Open(ctx context.Context, dir string, start func() error, req OpenRequest) (net.Conn, error) {
	req.FrameIn = true
	c, rep, err := open(ctx, dir, start, req)
	if err != nil {
		return nil, err
	}
	return newFramedReader(c, rep.FrameIn), nil
}

// open sends an open request to the agent (started if absent) and returns
// the connection and the agent's acceptance; on a refusal the connection
// is closed.
func open(ctx context.Context, dir string, start func() error, req OpenRequest) (*net.UnixConn, reply, error) {
	req.Progress = req.OnProgress != nil
	for attempt := 1; ; attempt++ {
		c, err := Ensure(ctx, dir, start)
		if err != nil {
			return nil, reply{}, err
		}
		rep, err := roundTrip(ctx, c, request{Version: protoVersion, Op: opOpen, Open: &req})
		if err == nil && req.Proxy != "" && !rep.Proxy {
			// An agent older than HTTP proxy support dialled directly.
			_ = c.Close()
			return nil, reply{}, fmt.Errorf("the running sandmux agent predates HTTP proxy support and connected directly, not through HTTPS_PROXY/HTTP_PROXY: run `%s`, or use --no-agent", stopCommand(req.StopCommand))
		}
		if err == nil {
			return c, rep, nil
		}
		_ = c.Close()
		if kind := proxyKindUnknownTo(ctx, dir, rep.Error, req.Proxy); kind != "" {
			// Its reason, "only http:// proxies are supported", would
			// tell a user of a current sandmux that this kind is not.
			return nil, reply{}, fmt.Errorf("the running sandmux agent predates %s proxy support: run `%s`, or use --no-agent", kind, stopCommand(req.StopCommand))
		}
		// An agent that reached --persist as this request arrived closed
		// it unanswered; the next attempt finds it gone and starts one.
		// Nothing of the stream was sent yet, so asking again is safe.
		if !errors.Is(err, errAgentLeft) || attempt == openAttempts || !sleepCtx(ctx, openRetryGap) {
			return nil, reply{}, err
		}
	}
}

// proxyKindUnknownTo names the kind of the proxy URL p ("SOCKS",
// "https://") when the agent in dir refused an open request through it
// (refusal is its reason) and predates that kind; else "".
func proxyKindUnknownTo(ctx context.Context, dir, refusal, p string) string {
	if refusal == "" {
		return ""
	}
	var kind string
	var knows func(Status) bool
	switch {
	case strings.HasPrefix(p, "socks5://"), strings.HasPrefix(p, "socks5h://"):
		kind, knows = "SOCKS", func(st Status) bool { return st.SOCKS }
	case strings.HasPrefix(p, "https://"):
		kind, knows = "https://", func(st Status) bool { return st.HTTPSProxy }
	default:
		return ""
	}
	if st, err := GetStatus(ctx, dir); err == nil && !knows(st) {
		return kind
	}
	return ""
}

// openAttempts bounds how often open asks again after errAgentLeft, a
// little apart: the agent that left closes its listener at once.
const (
	openAttempts = 5
	openRetryGap = 20 * time.Millisecond
)

// holdRunLock takes the exclusive flock on path that a serving agent
// holds until its listener closes, or reports ErrAlreadyRunning: two
// agents started at once (--foreground) must not both remove the socket
// and listen, leaving one unreachable. It waits up to runLockWait, as an
// agent that just closed its listener (so that the next proxy started
// this one) lets go of the lock a moment later.
func holdRunLock(path string) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), runLockWait)
	defer cancel()
	unlock, err := lock(ctx, path)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, ErrAlreadyRunning
	}
	return unlock, err
}

// runLockWait is how long a starting agent waits for the run lock.
const runLockWait = time.Second

// roundTrip sends req and reads the agent's reply; a refusal is an error
// carrying the agent's one-line reason. It gives up when ctx ends: an
// agent that accepts but never answers (stopped, or stuck) must not hang
// every ssh, `sandmux status` and `sandmux agent --stop` with it.
func roundTrip(ctx context.Context, c *net.UnixConn, req request) (rep reply, err error) {
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer func() {
		if stop() {
			return
		}
		// ctx ended during the exchange, so c may have a deadline in the
		// past whatever was read: it is of no more use.
		rep, err = reply{}, ctx.Err()
		if errors.Is(err, context.DeadlineExceeded) {
			// The peer's address is the agent's socket, in its directory.
			err = noAnswerError{dir: filepath.Dir(c.RemoteAddr().String())}
		}
	}()
	if err := writeMessage(c, req); err != nil {
		// An agent that refuses this peer (another uid) replies and closes
		// without reading the request, so the write can fail with EPIPE;
		// its reason is still buffered and says more than "broken pipe".
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		if rerr := readMessage(c, &rep); rerr == nil && !rep.OK && rep.Error != "" {
			return rep, errors.New(rep.Error)
		}
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			return reply{}, fmt.Errorf("%w: %w", errAgentLeft, err)
		}
		return reply{}, fmt.Errorf("talk to the sandmux agent: %w", err)
	}
	for {
		rep = reply{}
		if err := readMessage(c, &rep); err != nil {
			// Closed before any answer (progress reports are not one).
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
				return reply{}, fmt.Errorf("%w: %w", errAgentLeft, err)
			}
			return reply{}, fmt.Errorf("the sandmux agent did not answer: %w", err)
		}
		if rep.Progress == nil || req.Open == nil {
			break
		}
		if req.Open.OnProgress != nil {
			req.Open.OnProgress(*rep.Progress)
		}
	}
	if !rep.OK {
		return rep, errors.New(rep.Error)
	}
	return rep, nil
}

// GetStatus asks a running agent for its status.
func GetStatus(ctx context.Context, dir string) (Status, error) {
	c, err := connect(ctx, dir)
	if err != nil {
		return Status{}, orStopping(dir, err)
	}
	defer c.Close()
	rep, err := roundTrip(ctx, c, request{Version: protoVersion, Op: opStatus})
	if err != nil {
		return Status{}, orStopping(dir, err)
	}
	if rep.Status == nil {
		return Status{}, errors.New("the sandmux agent sent no status")
	}
	return *rep.Status, nil
}

// Stop asks a running agent to shut down and waits until it has closed
// its sessions (the agent closes the request's connection last) and its
// socket is gone, or ctx ends. An agent that predates the wait closes the
// connection at once; the socket's removal is then all there is to wait for.
// An agent that no longer answers because it is already stopping (an
// earlier Stop still waits for it) is ErrStopping, at once: WaitStopped
// waits for it.
func Stop(ctx context.Context, dir string) error {
	c, err := connect(ctx, dir)
	if err != nil {
		return orStopping(dir, err)
	}
	defer c.Close()
	// The socket of the agent being stopped: once its listener is closed
	// the next proxy may start the next agent, whose socket takes the
	// same path while this one still closes its sessions.
	mine, statErr := os.Stat(SocketPath(dir))
	if _, err := roundTrip(ctx, c, request{Version: protoVersion, Op: opStop}); err != nil {
		return orStopping(dir, err)
	}
	stopWatch := context.AfterFunc(ctx, func() { _ = c.Close() })
	_, _ = io.Copy(io.Discard, c)
	stopWatch()
	for ctx.Err() == nil {
		cur, err := os.Stat(SocketPath(dir))
		if errors.Is(err, os.ErrNotExist) || (err == nil && statErr == nil && !os.SameFile(cur, mine)) {
			return nil
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrStopSlow
	}
	return ctx.Err() // interrupted
}

// orStopping is ErrStopping for a failure to reach an agent that is
// stopping: it has closed its listener (no socket, or the connection
// reached the listener as it closed) and still closes its sessions.
func orStopping(dir string, err error) error {
	if (errors.Is(err, ErrNotRunning) || errors.Is(err, errAgentLeft)) && stoppingNow(filepath.Join(dir, StoppingName)) {
		return ErrStopping
	}
	return err
}

// WaitStopped waits until no agent in dir is stopping (see ErrStopping):
// every one that had stopped accepting has closed its sessions and
// exited. It is ErrStopSlow if ctx's deadline comes first.
func WaitStopped(ctx context.Context, dir string) error {
	path := filepath.Join(dir, StoppingName)
	for stoppingNow(path) {
		if !sleepCtx(ctx, 20*time.Millisecond) {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return ErrStopSlow
			}
			return ctx.Err()
		}
	}
	return nil
}
