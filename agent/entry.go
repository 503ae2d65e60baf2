package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/logflood"
	"github.com/sandmux/sandmux/mux"
)

// entry is one shared session: one server URL with one set of
// credentials. Its maintainer goroutine dials, watches and redials; proxy
// requests wait on it for a connected session.
type entry struct {
	cfg     client.Config
	host    string
	log     *slog.Logger
	backoff client.Backoff
	dial    func(context.Context, client.Config) (*client.Session, error)

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every state change
	state    string
	reason   string
	sess     *client.Session
	running  bool // a maintainer goroutine is alive
	failGen  int  // bumped on every permanent failure
	lastErr  error
	since    time.Time
	lastUsed time.Time
	connects int
	dialErrs int
	streams  int
	requests int // requests between entryFor and their stream's start
	total    int64
	// Bytes moved by sessions that have ended; the live one is added on
	// demand.
	bytesIn, bytesOut int64
	resumes, replayed int64
	// The current outage, for progress reports: dials that failed in it
	// and when the next one is due.
	outageFails int
	retryAt     time.Time
	// hurry tells a maintainer waiting out its backoff that a request is
	// waiting for the session: it dials as soon as client.HurryFloor (and
	// its jitter) has passed since its last attempt, rather than at the
	// end of a backoff of up to 10 s, so a proxy started once the server
	// is back is not held up.
	hurry chan struct{}
	// fullSess refused a stream for the server's stream limit while it
	// carried about fullAt streams: while it carries that many, a new
	// proxy's stream gets a WebSocket of its own (open), as ssh falls
	// back to a connection of its own when its ControlMaster refuses a
	// session.
	fullSess *client.Session
	fullAt   int
	// own closes the sessions dialled for one stream each (a raw server,
	// a full shared session) until their stream is done, so that the
	// agent's stop ends them as it ends the shared one.
	own map[*ownSession]struct{}
	// retired is set when the agent drops the entry (reap): no maintainer
	// may start or go on, or it would redial a session nobody can reach.
	retired bool
	// stopMaintainer ends the running maintainer's context.
	stopMaintainer context.CancelFunc
}

func newEntry(cfg client.Config, host string, log *slog.Logger, b client.Backoff, dial func(context.Context, client.Config) (*client.Session, error)) *entry {
	return &entry{
		cfg: cfg, host: host, log: log, backoff: b, dial: dial,
		changed: make(chan struct{}), state: StateConnecting, lastUsed: time.Now(),
		hurry: make(chan struct{}, 1),
	}
}

// setLocked changes state and wakes every waiter. e.mu must be held.
func (e *entry) setLocked(state, reason string) {
	e.state, e.reason = state, reason
	close(e.changed)
	e.changed = make(chan struct{})
}

// ensureRunningLocked starts the maintainer unless one is alive.
func (e *entry) ensureRunningLocked(ctx context.Context, wg *sync.WaitGroup) {
	if e.running || e.state == StateRaw || e.retired {
		return
	}
	e.running = true
	if e.state == StateFailed || e.state == StateIdle {
		e.setLocked(StateConnecting, "")
	}
	ctx, cancel := context.WithCancel(ctx)
	e.stopMaintainer = cancel
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancel()
		e.maintain(ctx)
	}()
}

// retire stops the entry for good: its maintainer and its session.
func (e *entry) retire() {
	e.mu.Lock()
	e.retired = true
	stop := e.stopMaintainer
	e.mu.Unlock()
	if stop != nil {
		stop()
	}
	e.closeSession()
}

// maintain keeps a session up: dial, wait for its end, redial with
// backoff. It stops on a permanent failure (bad credentials or URL), which
// the next request retries once instead of a loop hammering the server.
func (e *entry) maintain(ctx context.Context) {
	attempt := 0
	for {
		sess, err := e.dial(ctx, e.cfg)
		if ctx.Err() != nil {
			if sess != nil {
				_ = sess.Close()
			}
			e.stopped(StateFailed, "agent shutting down", ctx.Err())
			return
		}
		if err != nil {
			if !e.dialFailed(ctx, err, attempt) {
				return
			}
			attempt++
			continue
		}
		if sess.Raw() {
			// A raw server carries one connection per WebSocket, so nothing
			// can be shared: every request dials its own.
			_ = sess.Close()
			e.log.Info("server speaks raw mode only; one WebSocket per stream")
			e.stopped(StateRaw, "server is a raw WebSocket bridge; no sharing", nil)
			return
		}
		up := time.Now()
		e.mu.Lock()
		e.sess, e.since, e.lastErr = sess, up, nil
		e.outageFails, e.retryAt = 0, time.Time{}
		e.connects++
		e.setLocked(StateConnected, "")
		e.mu.Unlock()
		e.log.Info("session connected", "connects", e.connects)

		reason, lazy := e.hold(ctx, sess)
		if ctx.Err() != nil {
			e.stopped(StateFailed, "agent shutting down", ctx.Err())
			return
		}
		if lazy {
			// The next request dials (ensureRunningLocked).
			e.log.Info("session ended; reconnecting when next used", "reason", reason, "lived", time.Since(up).Round(time.Millisecond))
			e.stopped(StateIdle, reason+"; reconnects when next used", nil)
			return
		}
		e.log.Info("session lost; reconnecting", "reason", reason, "lived", time.Since(up).Round(time.Millisecond))
		if time.Since(up) >= e.backoff.StableAfter {
			attempt = 0
		}
		// A prompt first retry: most losses are an edge recycling the
		// WebSocket, and the server is right there. A request arriving
		// meanwhile cuts a longer wait short (hurry), as after a failed dial.
		wait := e.backoff.Delay(attempt)
		e.mu.Lock()
		e.retryAt = time.Now().Add(wait)
		e.mu.Unlock()
		if !e.backoffWait(ctx, wait) {
			e.stopped(StateFailed, "agent shutting down", ctx.Err())
			return
		}
		attempt++
	}
}

// dialFailed handles a failed dial, the attempt-th since the last
// success, and reports whether to dial again. A permanent failure ends the
// maintainer, and so does one that nobody waits for any more; any other
// is retried after the backoff.
func (e *entry) dialFailed(ctx context.Context, err error, attempt int) bool {
	if !temporary(err) {
		e.log.Warn("dial failed; not retrying", "err", err)
		e.stopped(StateFailed, err.Error(), err)
		return false
	}
	e.mu.Lock()
	e.dialErrs++
	e.lastErr = err
	if e.requests == 0 && e.streams == 0 {
		// Nobody waits any more (the request that asked gave up):
		// redialling until the agent exits would only hammer a server
		// that may be gone for good (a deleted sandbox). The next request
		// dials again (ensureRunningLocked); a request that comes
		// meanwhile sees running false, under the same lock, and starts a
		// maintainer of its own.
		e.running = false
		e.outageFails, e.retryAt = 0, time.Time{}
		e.setLocked(StateIdle, fmt.Sprintf("%v; reconnects when next used", err))
		e.mu.Unlock()
		e.log.Info("dial failed; nobody waits for the session, so it is dialled again when next used", "err", err)
		return false
	}
	state := StateReconnecting
	if e.connects == 0 {
		state = StateConnecting
	}
	wait := e.backoff.Delay(attempt)
	e.outageFails++
	e.retryAt = time.Now().Add(wait)
	e.setLocked(state, fmt.Sprintf("%v; retry %d in %s", err, attempt+1, wait.Round(time.Millisecond)))
	e.mu.Unlock()
	e.log.Info("dial failed; retrying", "err", err, "in", wait.Round(time.Millisecond))
	if !e.backoffWait(ctx, wait) {
		e.stopped(StateFailed, "agent shutting down", ctx.Err())
		return false
	}
	return true
}

// hold keeps the connected sess until it ends or the agent stops, then
// closes it, folds its counters into the entry's, and says why it ended
// (lostReason). The entry shows it reconnecting unless the agent is
// stopping or the session is to be dialled when next used (lazy): as
// lostReason says, or because no request waits for it. A session lost
// for good (it could not be resumed) was redialled at once for nobody:
// the new one was held idle until --persist, or, with the server still
// away, the dial failed and the entry went idle all the same. A request
// that comes before the maintainer has stopped finds the entry idle
// then, and dials (session).
func (e *entry) hold(ctx context.Context, sess *client.Session) (reason string, lazy bool) {
	select {
	case <-sess.Done():
	case <-ctx.Done():
	}
	reason, lazy = lostReason(sess)
	st := sess.Mux().Stats()
	_ = sess.Close()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sess = nil
	e.bytesIn += st.BytesIn
	e.bytesOut += st.BytesOut
	e.resumes += st.Resumes
	e.replayed += st.Replayed
	e.lastErr = errors.New(reason)
	switch {
	case ctx.Err() != nil || lazy:
	case e.requests == 0:
		lazy = true
	default:
		e.setLocked(StateReconnecting, reason)
	}
	return reason, lazy
}

// lostReason says why sess ended, as `sandmux status` shows it, and
// whether to dial again only when a request needs it. That is so when the
// server ended the session on purpose (idle, or shutting down), where
// redialling at once would only have it end another every few seconds
// for as long as the agent persists, and for every session that cannot
// resume (v1, --no-resume): its streams are gone whatever happens, and a
// v1 session's end cannot be told apart reliably from the server's idle
// close, so it is redialled as OpenSSH's ControlMaster is, by the next
// use.
func lostReason(sess *client.Session) (string, bool) {
	m := sess.Mux()
	resumable := m.Resumable() != nil
	if m.ClosedByPeer() {
		return "the server closed the session", true
	}
	if m.Dead() {
		return "no response within the keepalive limit", !resumable
	}
	if rc := m.Resumable(); rc != nil && rc.Err() != nil {
		return "session ended: " + rc.Err().Error(), false
	}
	return "the WebSocket closed", !resumable
}

// stopped records that the maintainer exits in state.
func (e *entry) stopped(state, reason string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.running = false
	e.lastErr = err
	if state == StateFailed {
		e.failGen++
	}
	e.setLocked(state, reason)
}

// session waits for a connected session, starting the maintainer if
// needed. It fails at once on a permanent failure that happened after the
// call began, and with the last dial error when ctx ends first.
// notify, if non-nil, hears of each state change while the wait lasts.
func (e *entry) session(ctx, agentCtx context.Context, wg *sync.WaitGroup, notify func(Progress)) (*client.Session, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lastUsed = time.Now()
	startGen := e.failGen
	e.ensureRunningLocked(agentCtx, wg)
	if time.Until(e.retryAt) > 0 {
		select {
		case e.hurry <- struct{}{}:
		default:
		}
	}
	for {
		if e.state == StateIdle {
			// The server closed the session while this request waited.
			e.ensureRunningLocked(agentCtx, wg)
		}
		switch {
		case e.state == StateConnected && e.sess != nil:
			return e.sess, nil
		case e.state == StateRaw:
			return nil, errRawServer
		case e.state == StateFailed && e.failGen > startGen:
			return nil, e.lastErr
		}
		ch := e.changed
		var p *Progress
		if notify != nil && (e.state == StateConnecting || e.state == StateReconnecting) {
			p = &Progress{State: e.state, Attempt: e.outageFails + 1, NextIn: max(time.Until(e.retryAt), 0)}
			if e.lastErr != nil {
				// The dial's own error: e.reason adds when the next
				// one is due, which the proxy words itself.
				p.Reason = e.lastErr.Error()
			}
		}
		e.mu.Unlock()
		if p != nil {
			notify(*p)
		}
		select {
		case <-ch:
			e.mu.Lock()
		case <-ctx.Done():
			e.mu.Lock()
			return nil, &connectTimeoutError{last: e.lastErr}
		}
	}
}

// connectTimeoutError means no session came up within --connect-timeout;
// last is the most recent dial error, if any.
type connectTimeoutError struct{ last error }

func (e *connectTimeoutError) Error() string {
	if e.last == nil {
		return "no connection within the connect timeout"
	}
	return "no connection within the connect timeout: " + e.last.Error()
}

func (e *connectTimeoutError) Unwrap() error { return e.last }

// open returns a stream to target on the shared session, retrying when a
// session dies between being handed out and opening the stream, and the
// shared session it is on (nil for a WebSocket of its own). overflow
// lets it take a WebSocket of its own when the shared one is full.
// confirmed waits for the server's reply to the stream wherever: an
// --fdpass proxy exits before the stream's first bytes, so a refusal
// must come before it passes ssh the connection, or nobody tells it.
func (e *entry) open(ctx, agentCtx context.Context, wg *sync.WaitGroup, target string, overflow, confirmed bool, notify func(Progress)) (net.Conn, func(), *client.Session, error) {
	for {
		sess, err := e.session(ctx, agentCtx, wg, notify)
		if errors.Is(err, errRawServer) {
			// A raw server carries one connection per WebSocket.
			conn, release, err := e.dialOwn(ctx, target)
			return conn, release, nil, err
		}
		if err != nil {
			return nil, nil, nil, err
		}
		resuming := sess.Resuming()
		// A full session that is resuming is waited for as any other: a
		// dial of its own would meet the same outage at once.
		if overflow && !resuming && e.full(sess) {
			conn, release, err := e.dialOwn(ctx, target)
			return conn, release, nil, err
		}
		if notify != nil && resuming {
			notify(Progress{State: StateResuming})
		}
		// A stream opened early on a session that is still resuming would
		// die with it if the server refuses the resume (it restarted), and
		// so would one on a new session whose WebSocket is lost before the
		// server's welcome; waiting for the reply (which follows the
		// welcome) lets this loop retry on a fresh session.
		// So does a proxy's stream on a session that carries many (a
		// forward's, say): the server's stream limit may refuse it, and a
		// refusal of a stream opened early comes after ssh's first bytes
		// went with it, too late to give it a WebSocket of its own. Its
		// set-up pays the reply's round trip.
		crowded := overflow && sess.Mux() != nil && sess.Mux().NumStreams() >= crowdedAt(sess.ServerMaxStreams())
		open := sess.OpenStreamEarly
		if resuming || !sess.Welcomed() || crowded || confirmed {
			open = sess.OpenStream
		}
		conn, err := open(ctx, target)
		if err == nil {
			return conn, func() {}, sess, nil
		}
		if crowded && e.noteRefusal(err, sess) {
			conn, release, err := e.dialOwn(ctx, target)
			return conn, release, nil, err
		}
		if ctx.Err() == nil && sess.EndedUnder(err) {
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) && sess.Resuming() {
			// The wait ran out on a session that is still being resumed:
			// say so, and why the last attempt failed.
			return nil, nil, nil, &connectTimeoutError{last: sess.WaitingReason()}
		}
		return nil, nil, sess, err
	}
}

// crowdedStreams is how many streams a shared session carries before a
// proxy's stream on it waits for the server's reply (open): far below the
// server's default limit (256), and above what ssh, scp and sftp alone
// keep open.
const crowdedStreams = 32

// crowdedAt is how many streams make a session crowded (see open) on a
// server whose stream limit is limit (0: it did not say): crowdedStreams,
// or half the limit where that is fewer. A server with a low
// --max-streams (4, say) refused the next ssh past it after its first
// bytes had gone, and that ssh failed; from half the limit on, a
// refusal comes first, and the ssh gets a WebSocket of its own. The
// margin covers streams the server still counts that the agent has
// closed.
func crowdedAt(limit int) int {
	if limit <= 0 {
		return crowdedStreams
	}
	return min(crowdedStreams, limit/2)
}

// ownSession is a session dialled for one stream (dialOwn).
type ownSession struct{ close func() }

// dialOwn dials a session of its own for one stream to target, as
// --no-agent does, and keeps it among the entry's until the returned
// release closes it.
func (e *entry) dialOwn(ctx context.Context, target string) (net.Conn, func(), error) {
	conn, closeFn, err := client.DialStream(ctx, e.cfg, target)
	if err != nil {
		return nil, nil, err
	}
	o := &ownSession{close: sync.OnceFunc(closeFn)}
	e.mu.Lock()
	if e.own == nil {
		e.own = make(map[*ownSession]struct{})
	}
	e.own[o] = struct{}{}
	e.mu.Unlock()
	return conn, func() {
		e.mu.Lock()
		delete(e.own, o)
		e.mu.Unlock()
		o.close()
	}, nil
}

// noteRefusal learns from how a stream on the shared session sess ended
// whether the server refused it for its limit of streams per session,
// and reports whether so. The refused stream may still be counted in
// sess, so the session counts as full from one stream fewer: a proxy's
// stream given a WebSocket of its own one stream early costs only that.
// A refusal for the server's limit across all sessions is not noted:
// another WebSocket would be refused as well, so the user is told the
// server's line, which says what to do.
func (e *entry) noteRefusal(err error, sess *client.Session) bool {
	var se *mux.StreamError
	if !errors.As(err, &se) || !se.SessionLimit() {
		return false
	}
	if sess == nil || sess.Raw() {
		return true
	}
	n := max(sess.Mux().NumStreams()-1, 1)
	e.mu.Lock()
	changed := e.fullSess != sess || e.fullAt != n
	e.fullSess, e.fullAt = sess, n
	e.mu.Unlock()
	if changed {
		e.log.Info("the server refused a stream for its stream limit; "+
			"while the session is this full, proxies' streams get a WebSocket of their own", logflood.Limit, "streams", n)
	}
	return true
}

// limitHint notes a refusal for the server's stream limit on sess
// (noteRefusal) and, for a request that may overflow, adds that running
// the command again works.
func (e *entry) limitHint(err error, host string, sess *client.Session, overflow bool) error {
	if !e.noteRefusal(err, sess) || !overflow {
		return err
	}
	return fmt.Errorf("%w; run the command again: while the session to %s is this full, the agent gives it a WebSocket of its own", err, host)
}

// full reports whether sess carries as many streams as when the server
// refused one for its limit (noteRefusal).
func (e *entry) full(sess *client.Session) bool {
	e.mu.Lock()
	fs, n := e.fullSess, e.fullAt
	e.mu.Unlock()
	return fs == sess && sess.Mux().NumStreams() >= n
}

// streamStarted and streamEnded count the streams using the entry.
func (e *entry) streamStarted() {
	e.mu.Lock()
	e.streams++
	e.total++
	e.lastUsed = time.Now()
	e.mu.Unlock()
}

func (e *entry) streamEnded() { e.count(&e.streams, -1) }

// count adds d to one of the entry's counts of users (streams, requests)
// and marks it used now.
func (e *entry) count(n *int, d int) {
	e.mu.Lock()
	*n += d
	e.lastUsed = time.Now()
	e.mu.Unlock()
}

// idleFor reports how long the entry has had no stream, or 0 when in use.
func (e *entry) idleFor() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.streams > 0 || e.requests > 0 {
		return 0
	}
	return time.Since(e.lastUsed)
}

// beginRequest and endRequest count a request on the entry, from before
// it waits for the session until its stream has started or failed.
func (e *entry) beginRequest() { e.count(&e.requests, +1) }

func (e *entry) endRequest() { e.count(&e.requests, -1) }

// failedForGood reports whether the session failed (bad credentials or
// URL) and nothing is retrying it.
func (e *entry) failedForGood() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state == StateFailed && !e.running
}

// closeSession ends the live session, if any, and the sessions of one
// stream each (dialOwn); the maintainer then exits because its context
// is cancelled first (the agent's, or retire's).
func (e *entry) closeSession() {
	e.mu.Lock()
	s := e.sess
	own := make([]*ownSession, 0, len(e.own))
	for o := range e.own {
		own = append(own, o)
	}
	e.mu.Unlock()
	if s != nil {
		_ = s.Close()
	}
	for _, o := range own {
		o.close()
	}
}

// status snapshots the entry.
func (e *entry) status() SessionStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := SessionStatus{
		URL: client.RedactURL(e.cfg.URL), Host: e.host, Proxy: client.RedactProxy(e.cfg.Proxy), Options: sessionOptions(e.cfg), State: e.state, Reason: e.reason,
		Connects: e.connects, Reconnects: max(e.connects-1, 0), DialErrors: e.dialErrs,
		OpenStreams: e.streams, Waiting: e.requests, Streams: e.total, BytesIn: e.bytesIn, BytesOut: e.bytesOut,
	}
	st.Resumes, st.Replayed = e.resumes, e.replayed
	if e.sess != nil {
		ms := e.sess.Mux().Stats()
		st.ConnectedSince = e.since
		st.LastRTT = ms.LastRTT
		st.BytesIn += ms.BytesIn
		st.BytesOut += ms.BytesOut
		st.Resumable = e.sess.Resumable()
		st.Resumes += ms.Resumes
		st.Replayed += ms.Replayed
		st.Unacked = ms.Unacked
		// One look at the outage, not Resuming then Outage: a resume
		// between the two would show "resuming" with no age or reason.
		if since, cause := e.sess.Outage(); !since.IsZero() {
			st.State = StateResuming
			st.ResumingSince = since
			st.Reason = resumingReason(cause, e.sess.ResumeError())
		}
	}
	return st
}

// resumingReason says why a session is resuming and, once an attempt
// has failed, how: a server that was killed shows "connection refused"
// here for as long as the client keeps trying.
func resumingReason(cause, last error) string {
	reason := "the connection was lost: " + client.DescribeLoss(cause)
	if last != nil {
		reason += "; last attempt: " + last.Error()
	}
	return reason
}

// temporary reports whether redialing after err may succeed.
func temporary(err error) bool {
	var de *client.DialError
	if errors.As(err, &de) {
		return de.Temporary()
	}
	return !errors.Is(err, client.ErrBadURL) && !errors.Is(err, client.ErrInvalidConfig) && !errors.Is(err, mux.ErrInvalidConfig)
}

// backoffWait waits d after a failed dial, or less once a request asks
// for the session (hurry), but at least client.HurryFloor. It reports
// false if ctx ended.
func (e *entry) backoffWait(ctx context.Context, d time.Duration) bool {
	return client.WaitHurried(ctx.Done(), d, e.hurry)
}

// sleepCtx waits d or until ctx ends; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
