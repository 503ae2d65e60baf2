package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandmux/sandmux/mux"
)

// Session is one dialed WebSocket: a sandmux session carrying any number
// of streams, or, against a server that picked no sandmux subprotocol, a
// raw connection carrying exactly one.
type Session struct {
	url     string
	cfg     Config
	log     *slog.Logger
	mux     *mux.Session
	raw     net.Conn
	rawUsed atomic.Bool
	ctx     context.Context
	cancel  func()

	// Resumable sessions only: the resume credentials the server issued
	// and its grace, under idMu (the WELCOME that carries them is read
	// by the transport after Dial has returned), and the loop that
	// resumes.
	idMu   sync.Mutex
	id     [mux.SessionIDSize]byte
	secret [mux.SecretSize]byte
	grace  time.Duration
	// resumeErr is why the last resume attempt failed, under idMu; nil
	// once one succeeds.
	resumeErr error
	wg        sync.WaitGroup
	// maxStreams is the server's stream limit as its last upgrade
	// answered it (mux.MaxStreamsHeader); 0 when it did not say.
	maxStreams atomic.Int64
}

// ServerMaxStreams is how many streams the server carries at once on this
// session, as it said when the WebSocket was made, or 0 when it did not
// (a server older than the header, or an edge that dropped it).
func (s *Session) ServerMaxStreams() int { return int(s.maxStreams.Load()) }

// ResumeError is why the last attempt to resume the session failed, or
// nil: for the one line of a request that waited for it in vain.
func (s *Session) ResumeError() error {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	return s.resumeErr
}

// WaitingReason says why an open on s ran out of time while it was being
// resumed: "the session is being resumed", and how the last attempt
// failed, if one has.
func (s *Session) WaitingReason() error {
	if rerr := s.ResumeError(); rerr != nil {
		return fmt.Errorf("the session is being resumed; last attempt: %w", rerr)
	}
	return errors.New("the session is being resumed")
}

// EndedUnder reports whether err, from opening a stream on s, means that
// s ended under the open (it could not be resumed, or died): nothing
// reached the target, so the stream may be opened on a fresh session.
func (s *Session) EndedUnder(err error) bool {
	return errors.Is(err, mux.ErrSessionEnded) || errors.Is(err, mux.ErrSessionDead) || s.Mux().IsClosed()
}

func (s *Session) setResumeError(err error) {
	s.idMu.Lock()
	s.resumeErr = err
	s.idMu.Unlock()
}

// identity returns the resume credentials, and false while the server's
// WELCOME has not arrived.
func (s *Session) identity() (id [mux.SessionIDSize]byte, secret [mux.SecretSize]byte, ok bool) {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	return s.id, s.secret, s.id != [mux.SessionIDSize]byte{}
}

// Resumable reports whether the session survives a lost WebSocket.
func (s *Session) Resumable() bool { return s.mux != nil && s.mux.Resumable() != nil }

// Resuming reports whether the session is waiting to be resumed.
func (s *Session) Resuming() bool {
	return s.Resumable() && !s.mux.Resumable().Attached()
}

// Outage reports, while Resuming, when the WebSocket was lost and why;
// since is zero otherwise.
func (s *Session) Outage() (since time.Time, cause error) {
	if !s.Resumable() {
		return time.Time{}, nil
	}
	return s.mux.Resumable().Detachment()
}

// Grace is how long the server keeps this session when detached.
// It is 0 until the server's WELCOME has arrived.
func (s *Session) Grace() time.Duration {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	return s.grace
}

// Welcomed reports whether the server has accepted the session: always
// for one that does not resume, and for a resumable one once its WELCOME
// has arrived (Dial does not wait for it, spec §9.2). Until then a lost
// WebSocket ends the session, with ErrNoWelcome.
func (s *Session) Welcomed() bool {
	if !s.Resumable() {
		return true
	}
	_, _, ok := s.identity()
	return ok
}

// Raw reports whether the server answered in raw mode.
func (s *Session) Raw() bool { return s.raw != nil }

// Mux returns the sandmux session, or nil in raw mode.
func (s *Session) Mux() *mux.Session { return s.mux }

// OpenStream asks the server for a stream to target ("" = the server's
// default target). A refusal is a *mux.StreamError.
func (s *Session) OpenStream(ctx context.Context, target string) (net.Conn, error) {
	if s.raw != nil {
		if target != "" {
			return nil, ErrRawTarget
		}
		if !s.rawUsed.CompareAndSwap(false, true) {
			return nil, ErrRawUsed
		}
		return s.raw, nil
	}
	return s.mux.Open(ctx, mux.Request{Target: target})
}

// OpenStreamEarly is OpenStream without waiting for the server's reply:
// the stream is returned as soon as its request is sent, and a refusal is
// the *mux.StreamError of its first Read (see mux.Session.OpenEarly). A
// ProxyCommand uses it, as ssh's first bytes need no answer and sshd's
// banner can come back with the reply, one round trip sooner.
func (s *Session) OpenStreamEarly(ctx context.Context, target string) (net.Conn, error) {
	if s.raw != nil {
		return s.OpenStream(ctx, target)
	}
	return s.mux.OpenEarly(ctx, mux.Request{Target: target})
}

// Done is closed when the session has ended; in raw mode it is nil (the
// connection's own errors tell its end).
func (s *Session) Done() <-chan struct{} {
	if s.mux == nil {
		return nil
	}
	return s.mux.CloseChan()
}

// Close ends the session and every stream on it.
func (s *Session) Close() error {
	var err error
	if s.mux != nil {
		err = s.mux.Close()
	} else {
		err = s.raw.Close()
	}
	s.cancel()
	s.wg.Wait()
	return err
}

// DialStream dials a session of its own for exactly one stream to target:
// the --no-agent path, and the only way to reach a raw server. A server
// that refuses as busy, saying when to come back (Retry-After), is dialled
// again then, within cfg.DialTimeout. The stream is opened early
// (OpenStreamEarly): a refusal comes from its first Read. The returned
// func closes the session; call it when the stream is done.
func DialStream(ctx context.Context, cfg Config, target string) (net.Conn, func(), error) {
	sess, err := dial(ctx, cfg, true)
	if err != nil {
		return nil, nil, err
	}
	conn, err := sess.OpenStreamEarly(ctx, target)
	if err != nil {
		_ = sess.Close()
		return nil, nil, err
	}
	return conn, func() { _ = sess.Close() }, nil
}
