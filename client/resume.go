package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/mux"
)

// resumeLoop reattaches the session's transport whenever its WebSocket is
// lost, redialing with backoff (cut short when the session is used meanwhile:
// mux.Resumable.Want), until the server says the session is gone
// (restarted, grace expired, refused) or the transport gives up on its own
// grace clock. It is the only goroutine a Session starts.
func (s *Session) resumeLoop() {
	defer s.wg.Done()
	rc := s.mux.Resumable()
	for {
		select {
		case <-rc.Done():
			return
		case <-rc.Lost():
		}
		// Fail and Close close Lost as well as Done, and select picks
		// either at random: an ended transport must not be redialed.
		select {
		case <-rc.Done():
			return
		default:
		}
		attempt := 0
		var foreign time.Time // since when every attempt met a foreign answer
		for !s.reattach(rc, attempt, &foreign) {
			if !s.waitToRedial(rc, attempt) {
				return
			}
			attempt++
		}
	}
}

// waitToRedial waits out the backoff before redial number attempt+1: the
// busy delay while streams wait on the session, the full one once none
// do. It looks again when the busy delay is over, as the streams that
// made it busy may be gone by then (an open given up on, a proxy killed):
// an idle session redialling every MaxBusy through a long outage would
// only add to the load of whatever answers. It reports false once the
// transport has ended.
func (s *Session) waitToRedial(rc *mux.Resumable, attempt int) bool {
	start := time.Now()
	full := s.cfg.Backoff.Delay(attempt)
	if s.mux.NumStreams() > 0 {
		if busy := s.cfg.Backoff.DelayBusy(attempt); busy < full {
			if !WaitHurried(rc.Done(), busy, rc.Wanted()) {
				return false
			}
			if s.mux.NumStreams() > 0 {
				return true
			}
		}
	}
	return WaitHurried(rc.Done(), full-time.Since(start), rc.Wanted())
}

// resumeDialFirst bounds an outage's first resume attempt (dial and
// handshake); each later one gets twice the one before, up to the dial
// timeout. A dial begun while the path was dying, or on a route that
// has since changed (a new Wi-Fi, a new address), may never be answered:
// waiting the whole dial timeout (15 s) for it would hold every stream
// that long after the path came back.
const resumeDialFirst = 3 * time.Second

// resumeDialTimeout bounds resume attempt number attempt of an outage.
func resumeDialTimeout(attempt int, limit time.Duration) time.Duration {
	d := resumeDialFirst
	for range attempt {
		if d >= limit {
			break
		}
		d *= 2
	}
	return min(d, limit)
}

// reattach makes one resume attempt, the attempt-th of this outage; it
// reports whether the loop is done with the outage (resumed, or failed
// for good).
// foreign is when the run of attempts answered by something other than
// the server began (zero: the last one was not).
func (s *Session) reattach(rc *mux.Resumable, attempt int, foreign *time.Time) bool {
	id, secret, ok := s.identity()
	if !ok {
		// Lost before the server's WELCOME arrived: no id to resume
		// with, and a HELLO without one would make a new session.
		s.log.Warn("session lost before the server accepted it")
		rc.Fail(ErrNoWelcome)
		return true
	}
	ctx, cancel := context.WithTimeout(s.ctx, resumeDialTimeout(attempt, s.cfg.DialTimeout))
	defer cancel()
	link, err := s.dialWS(ctx, []string{mux.SubprotocolResumable}, true)
	if err != nil && s.ctx.Err() != nil {
		s.cutShort(rc)
		return true
	}
	if err != nil {
		if endsResumption(err) {
			s.notResumed(rc, err)
			return true
		}
		var de *DialError
		if errors.As(err, &de) && !de.Temporary() {
			// Retried through a network switch or a portal, but not for
			// the whole resume timeout: the sandbox may be gone.
			if foreign.IsZero() {
				*foreign = time.Now()
			}
			if time.Since(*foreign) >= s.cfg.ForeignAnswers {
				s.notResumed(rc, err)
				return true
			}
		} else {
			*foreign = time.Time{}
		}
		s.log.Info("resume: dial failed; retrying", "err", err)
		s.attemptFailed(rc, err)
		return false
	}
	ws := link.WS
	if ws.Subprotocol() != mux.SubprotocolResumable {
		_ = ws.CloseNow()
		s.notResumed(rc, errors.New("the server no longer offers resumption"))
		return true
	}
	w, err := mux.ClientHandshake(ctx, ws, mux.Hello{ID: id, Secret: secret, Received: rc.Received()})
	if err != nil && s.ctx.Err() != nil {
		_ = ws.CloseNow()
		s.cutShort(rc)
		return true
	}
	if err != nil {
		_ = ws.CloseNow()
		s.log.Info("resume: handshake failed; retrying", "err", err)
		s.attemptFailed(rc, fmt.Errorf("%s: resume handshake: %w", RedactURL(s.url), err))
		return false
	}
	if err := w.Err(); err != nil {
		_ = ws.CloseNow()
		s.notResumed(rc, err)
		return true
	}
	if w.Status != mux.WelcomeResumed || w.ID != id {
		_ = ws.CloseNow()
		rc.Fail(fmt.Errorf("%w: a resume of session %x answered with status %d for session %x", mux.ErrResumeProtocol, id[:4], w.Status, w.ID[:4]))
		return true
	}
	if _, err := rc.Attach(link, w.Received, nil); err != nil {
		_ = ws.CloseNow()
		return true
	}
	s.setResumeError(nil)
	s.log.Info("session resumed")
	return true
}

// cutShort logs a resume attempt that the session's end (Close) cut
// short: not a failure of the attempt, whose "context canceled" said
// nothing, nor one to retry or to record as the last attempt's.
func (s *Session) cutShort(rc *mux.Resumable) {
	why := "the session was closed"
	var nr *mux.NotResumedError
	if errors.As(rc.Err(), &nr) && nr.Within > 0 {
		why = fmt.Sprintf("the session was not resumed within %s (--resume-timeout)", nr.Within)
	}
	s.log.Info("resume attempt cut short: " + why)
}

// attemptFailed records why a resume attempt failed, for a request
// waiting on the session and for the session's end if the grace period
// runs out.
func (s *Session) attemptFailed(rc *mux.Resumable, err error) {
	s.setResumeError(err)
	rc.NoteAttempt(err)
}

// endsResumption reports whether a resume's failed dial means the server
// refused the session for good: its credentials (401, 403), or it no
// longer resumes or speaks this protocol (400, 426). Other answers a
// first dial takes as final are retried for Config.ForeignAnswers
// (spec §9.5): while a network is being switched, a captive portal or an
// edge without the sandbox yet can answer for the server (404, 200, a
// redirect, a certificate of its own, a name not found) until the path
// is back.
func endsResumption(err error) bool {
	var de *DialError
	if !errors.As(err, &de) {
		return false
	}
	switch de.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusBadRequest, http.StatusUpgradeRequired:
		return true
	}
	return errors.Is(de.Err, http.ErrSchemeMismatch)
}

// notResumed ends the session for good with the reason a user sees: the
// server refused, so no time limit was reached.
func (s *Session) notResumed(rc *mux.Resumable, cause error) {
	s.log.Warn("session could not be resumed", "err", cause)
	rc.Fail(&mux.NotResumedError{Cause: cause})
}

// dialWS opens one WebSocket offering protos. The Link carries the
// connection under it, so that a resumable transport writes its data
// frames itself (mux.Link).
func (s *Session) dialWS(ctx context.Context, protos []string, resuming bool) (mux.Link, error) {
	header := s.cfg.handshakeHeader()
	if resuming {
		header.Set(mux.ResumeHeader, "1")
	}
	hc, hs := httpClient(s.cfg)
	// The client serves this one handshake. A refused upgrade (401, 502,
	// ...) leaves its keep-alive connection idle in the pool, which nothing
	// would ever reuse or close: close it here.
	defer hc.CloseIdleConnections()
	ws, resp, err := websocket.Dial(ctx, s.cfg.URL, &websocket.DialOptions{
		HTTPClient:      hc,
		HTTPHeader:      header,
		CompressionMode: websocket.CompressionDisabled,
		Subprotocols:    protos,
	})
	if err != nil {
		var pe *ProxyError
		switch {
		case resp == nil && s.cfg.Proxy != nil && !hs.tunneled() && !errors.As(err, &pe):
			// No tunnel yet: the wait was for the proxy (net/http reports
			// its own timeout, not the dial's). Once the proxy has opened
			// it, a failure (the server's certificate) is the server's.
			err = &ProxyError{Proxy: RedactProxy(s.cfg.Proxy), Err: err}
		case resp == nil:
			err = notHTTP(err, hs.conn())
		}
		return mux.Link{}, dialError(s.cfg.URL, resp, err)
	}
	if resp != nil {
		if n, err := strconv.Atoi(resp.Header.Get(mux.MaxStreamsHeader)); err == nil && n > 0 {
			s.maxStreams.Store(int64(n))
		}
	}
	link := mux.Link{WS: ws, Client: true}
	if bc := hs.conn(); bc != nil {
		bc.Framing()
		link.Frames = bc
	}
	return link, nil
}
