package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sandmux/sandmux/internal/logflood"
	"github.com/sandmux/sandmux/internal/neterrno"
	"github.com/sandmux/sandmux/mux"
)

// serveMux runs one sandmux session until it ends. Streams are accepted in
// a tight loop and each is served in its own goroutine: yamux kills the
// whole session if an opened stream is not acknowledged in time, so a slow
// target must never hold up the accept loop.
func (s *Server) serveMux(conn net.Conn, log *slog.Logger) {
	sess, err := mux.Server(conn, s.cfg.Mux, log)
	if err != nil {
		log.Error("cannot start session", "err", err)
		_ = conn.Close()
		return
	}
	if !s.addSession(sess) {
		_ = sess.Close()
		return
	}
	defer s.removeSession(sess)
	start := time.Now()
	s.logSession(log, "session started", "mode", "sandmux", "resumable", sess.Resumable() != nil)

	var wg sync.WaitGroup
	var active, refusing atomic.Int64
	var idled atomic.Bool // closeWhenIdle ended the session
	// finishing bounds the refused streams waiting for their peer's FIN
	// (finishRefused) to refusalsPerStream × MaxStreams in the session,
	// and refusalsPerStream × MaxTotalStreams in the server (each holds a
	// goroutine and a stream, about 7 KiB: 100 sessions' worth would be
	// 700 MB); beyond, a refused stream is reset instead, so a peer that
	// never finishes them cannot pile them up. A burst past the limit from
	// an ordinary client, which finishes each within a round trip, stays
	// well below.
	finishing := func(st *mux.Stream, finish func()) {
		overSession := refusing.Add(1) > refusalsPerStream*int64(s.cfg.MaxStreams)
		overServer := s.refusing.Add(1) > refusalsPerStream*int64(s.cfg.MaxTotalStreams)
		if overSession || overServer {
			refusing.Add(-1)
			s.refusing.Add(-1)
			// Off the accept loop: the RST may wait for the send queue.
			wg.Go(st.Abort)
			return
		}
		wg.Go(func() {
			defer refusing.Add(-1)
			defer s.refusing.Add(-1)
			finish()
		})
	}
	refuse := func(st *mux.Stream, rep mux.Reply) {
		finishing(st, func() { s.refuseStream(sess, st, rep) })
	}
	if s.cfg.IdleTimeout > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.closeWhenIdle(sess, &active, &idled, log)
		}()
	}
	for {
		st, err := sess.Accept()
		if err != nil {
			break
		}
		// Counted before draining is checked, as Shutdown sets draining
		// before it counts: either Shutdown sees this stream, or this
		// sees the drain and refuses the stream.
		carried := s.stats.streamsActive.Add(1)
		s.stats.streamsTotal.Add(1) // refused ones included
		if s.draining.Load() {
			s.stats.streamsActive.Add(-1)
			refuse(st, mux.Reply{Status: mux.StatusInternal, Message: drainingMessage})
			continue
		}
		// The server's limit is checked first: a session at both limits
		// is told the server's, which another session would meet too, so
		// that its client does not open one in vain.
		if carried > int64(s.cfg.MaxTotalStreams) {
			// Each stream holds a connection to its target: without this
			// a client opening --max-streams in each of --max-sessions
			// sessions could hold 25,600 of them, past the file
			// descriptors of many a sandbox, and then no one could
			// connect or resume.
			s.stats.streamsActive.Add(-1)
			s.stats.refusedStreams.Add(1)
			log.Warn("refused stream: total stream limit", logflood.Limit, "limit", s.cfg.MaxTotalStreams)
			refuse(st, mux.Reply{Status: mux.StatusLimit, Limit: mux.LimitServer,
				Message: fmt.Sprintf("server at its limit of %s across all sessions; close some connections to it or raise --max-total-streams", count(s.cfg.MaxTotalStreams, "stream", "streams"))})
			continue
		}
		if active.Add(1) > int64(s.cfg.MaxStreams) {
			active.Add(-1)
			s.stats.streamsActive.Add(-1)
			s.stats.refusedStreams.Add(1)
			log.Warn("refused stream: stream limit", logflood.Limit, "limit", s.cfg.MaxStreams)
			refuse(st, mux.Reply{Status: mux.StatusLimit, Limit: mux.LimitSession,
				Message: fmt.Sprintf("server at its stream limit (%d); close some connections to it or raise --max-streams", s.cfg.MaxStreams)})
			continue
		}
		wg.Go(func() {
			refused := s.serveStream(sess, st, log)
			active.Add(-1)
			if refused {
				// No longer one of the session's streams: the drain and
				// the idle timer need not wait for its peer's FIN.
				finishing(st, func() { finishRefused(st) })
			}
		})
	}
	reason := s.endReason(sess, idled.Load())
	_ = sess.Close()
	wg.Wait()
	st := sess.Stats()
	s.logSession(log, "session ended", "reason", reason, "duration", time.Since(start).Round(time.Millisecond),
		"bytes_in", st.BytesIn, "bytes_out", st.BytesOut)
}

// endReason says why a session ended, for its "session ended" line: the
// operator's first question about a user's dropped ssh is whether the
// client left, went silent, never came back, or the server ended it.
// It is taken before the session's own Close, which would blur them.
func (s *Server) endReason(sess *mux.Session, idled bool) string {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	var err error
	if rc := sess.Resumable(); rc != nil {
		err = rc.Err()
	}
	var nr *mux.NotResumedError
	switch {
	case idled:
		return fmt.Sprintf("idle for --idle-timeout (%s)", s.cfg.IdleTimeout)
	case closed:
		return "server shutting down"
	case sess.Dead():
		return "client silent past the keepalive limit"
	case sess.ClosedByPeer():
		return "client closed the session"
	case errors.As(err, &nr):
		return fmt.Sprintf("client did not resume within --resume-grace (%s) after: %v", nr.Within, nr.Cause)
	case err != nil:
		return err.Error()
	}
	return "connection lost"
}

// refuseStream answers a stream with the refusal rep, naming the target
// the request asked for. The header is read first (bounded by the header
// timeout) so the reply is not mistaken for data.
func (s *Server) refuseStream(sess *mux.Session, st *mux.Stream, rep mux.Reply) {
	req, err := sess.ReadRequest(st)
	rep.Target = req.Target
	if err == nil {
		if t, ok := s.allow.resolve(req.Target); ok {
			rep.Target = t // the default target's address rather than ""
		}
	}
	_ = sess.Reply(st, rep)
	finishRefused(st)
}

// refusalsPerStream × MaxStreams refused streams may wait for their
// peer's FIN at once in one session.
const refusalsPerStream = 4

// finishRefused ends a refused stream: FIN, then whatever the peer sent
// with its header or still sends is read and dropped until its FIN.
// Unread, it would stay buffered, up to the stream's window, for as long
// as the peer kept the stream open (the close timeout counts from the
// peer's last frame). A peer that stops sending without finishing is cut
// by the close timeout, which ends the read.
func finishRefused(st *mux.Stream) {
	_ = st.CloseWrite()
	_, _ = io.Copy(io.Discard, st)
	_ = st.Close()
}

// closeWhenIdle ends a session that has had no stream for IdleTimeout.
func (s *Server) closeWhenIdle(sess *mux.Session, active *atomic.Int64, idled *atomic.Bool, log *slog.Logger) {
	tick := time.NewTicker(max(s.cfg.IdleTimeout/4, 10*time.Millisecond))
	defer tick.Stop()
	idleSince := time.Now()
	for {
		select {
		case <-sess.CloseChan():
			return
		case <-tick.C:
		}
		if active.Load() > 0 {
			idleSince = time.Now()
			continue
		}
		if time.Since(idleSince) >= s.cfg.IdleTimeout {
			log.Info("closing idle session", "idle", s.cfg.IdleTimeout)
			idled.Store(true)
			_ = sess.Close()
			return
		}
	}
}

func (s *Server) addSession(sess *mux.Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.sessions[sess] = struct{}{}
	return true
}

// removeSession forgets an ended session and keeps its byte counts, under
// the lock that Stats sums live sessions with, so they count once.
func (s *Server) removeSession(sess *mux.Session) {
	st := sess.Stats()
	s.mu.Lock()
	delete(s.sessions, sess)
	s.stats.bytesIn.Add(st.BytesIn)
	s.stats.bytesOut.Add(st.BytesOut)
	s.mu.Unlock()
}

// serveStream reads a stream's header, connects its target and splices.
// It reports whether it refused the stream, which the caller then
// finishes (finishRefused).
func (s *Server) serveStream(sess *mux.Session, st *mux.Stream, log *slog.Logger) (refused bool) {
	defer s.stats.streamsActive.Add(-1) // counted by the accept loop
	log = log.With("stream", st.StreamID())

	req, err := sess.ReadRequest(st)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		// Not a header this server cannot parse, whose hint asks about
		// versions: none came in time.
		log.Info("no stream header in time", logflood.Limit, "timeout", s.cfg.Mux.HeaderTimeout)
		_ = sess.Reply(st, mux.Reply{Status: mux.StatusInternal,
			Message: fmt.Sprintf("no stream header within the server's --header-timeout (%s); run the command again", s.cfg.Mux.HeaderTimeout)})
		return true
	case err != nil:
		log.Info("bad stream header", logflood.Limit, "err", err)
		_ = sess.Reply(st, mux.Reply{Status: mux.StatusBadRequest, Message: err.Error()})
		return true
	}
	target, ok := s.allow.resolve(req.Target)
	if !ok {
		s.stats.refusedTargets.Add(1)
		log.Info("refused target: not allowed", logflood.Limit, "target", req.Target)
		_ = sess.Reply(st, mux.Reply{Status: mux.StatusNotAllowed, Target: req.Target})
		return true
	}
	tc, err := s.dial(target)
	if err != nil {
		s.stats.targetErrors.Add(1)
		status := dialStatus(err)
		log.Info("cannot connect target", logflood.Limit, "target", target, "status", status, "err", err)
		_ = sess.Reply(st, mux.Reply{Status: status, Target: target, Message: dialMessage(err)})
		return true
	}
	if err := sess.Reply(st, mux.Reply{Status: mux.StatusOK, Target: target}); err != nil {
		// The stream was cut (reset by the client, its session gone)
		// while the target was being connected: the target must see the
		// cut, not a clean end with no data.
		mux.Abort(tc)
		st.Abort()
		return false
	}
	log.Debug("stream open", "target", target)
	// A target that fails resets the stream and a stream that fails
	// resets the target (Splice): a program behind `sandmux forward`, or
	// one inside the sandbox, must not take a cut for the end of the data.
	if err := mux.Splice(st, mux.Guarded(tc)); err != nil {
		log.Debug("stream ended with error", "target", target, "err", err)
		return false
	}
	log.Debug("stream closed", "target", target)
	return false
}

// dial connects a target, bounded by DialTimeout and by the server's life.
func (s *Server) dial(target string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	return d.DialContext(ctx, "tcp", target)
}

// dialMessage words a dial failure for the user without details that
// vary by machine (resolver addresses, source ports).
func dialMessage(err error) string {
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		return "no such host " + dns.Name
	case errors.As(err, &dns):
		return "cannot resolve " + dns.Name + ": " + dns.Err
	case errors.As(err, &ne) && ne.Timeout():
		return "connection timed out"
	case neterrno.Is(err, syscall.EHOSTUNREACH), neterrno.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	}
	return err.Error()
}

// dialStatus classifies a dial failure for the client.
func dialStatus(err error) mux.Status {
	if neterrno.Is(err, syscall.ECONNREFUSED) {
		return mux.StatusRefused
	}
	return mux.StatusUnreachable
}
