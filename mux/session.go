package mux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

// Session is a yamux session over one transport (normally a WebSocket),
// with its own keepalive that records round-trip times and a watchdog that
// closes the session when the transport goes silent.
type Session struct {
	ys   *yamux.Session
	tr   *transport
	rc   *Resumable // nil unless the transport is resumable
	cfg  Config
	log  *slog.Logger
	rtt  atomic.Int64 // last ping round trip in nanoseconds
	dead atomic.Bool

	done chan struct{} // closed by Close to stop the monitor
	once sync.Once
	wg   sync.WaitGroup
}

// Stats is a snapshot of a session's counters.
type Stats struct {
	// BytesIn and BytesOut count the session's bytes as yamux reads and
	// writes them, its framing included.
	BytesIn, BytesOut int64
	Streams           int           // streams open now
	LastRTT           time.Duration // the latest ping's round trip
	// Resumes and Replayed count transport resumptions and the bytes
	// resent by them; Unacked is how many sent bytes the peer has not yet
	// acknowledged, what a resume would replay now (resumable sessions
	// only).
	Resumes, Replayed, Unacked int64
}

// Client starts the client end of a session over conn.
func Client(conn net.Conn, cfg Config, log *slog.Logger) (*Session, error) {
	return newSession(conn, cfg, log, yamux.Client)
}

// Server starts the server end of a session over conn.
func Server(conn net.Conn, cfg Config, log *slog.Logger) (*Session, error) {
	return newSession(conn, cfg, log, yamux.Server)
}

func newSession(conn net.Conn, cfg Config, log *slog.Logger, start func(io.ReadWriteCloser, *yamux.Config) (*yamux.Session, error)) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = DiscardLogger()
	}
	rc, _ := conn.(*Resumable)
	if rc != nil {
		// The transport rides out outages up to the grace period; yamux
		// must not give up on a queued frame or an unacknowledged open
		// before that.
		cfg.WriteTimeout = max(cfg.WriteTimeout, rc.cfg.Grace+time.Minute)
		cfg.StreamOpenTimeout = max(cfg.StreamOpenTimeout, rc.cfg.Grace+time.Minute)
	}
	tr := newTransport(conn)
	ys, err := start(tr.forYamux(), cfg.yamuxConfig(log))
	if err != nil {
		return nil, fmt.Errorf("start yamux: %w", err)
	}
	s := &Session{ys: ys, tr: tr, rc: rc, cfg: cfg, log: log, done: make(chan struct{})}
	s.wg.Add(1)
	go s.monitor()
	return s, nil
}

// monitor pings every keepalive interval and closes the session when no
// byte has arrived for DeadAfter. Pings run one at a time in their own
// goroutine because a ping blocks until its pong or WriteTimeout.
func (s *Session) monitor() {
	defer s.wg.Done()
	deadAfter := s.cfg.deadAfter()
	// At least a millisecond: under 4 ns the quarter was 0, a ticker
	// that panics (`sandmux proxy --keepalive 1ns`).
	check := max(min(s.cfg.KeepAliveInterval, deadAfter)/4, time.Millisecond)
	ticker := time.NewTicker(check)
	defer ticker.Stop()
	var pinging sync.WaitGroup
	defer pinging.Wait()
	var busy atomic.Bool
	var lastPing time.Time
	var resumes int64 // the transport's resumes as of the last ping
	ping := func() {
		if !busy.CompareAndSwap(false, true) {
			return
		}
		lastPing = time.Now()
		resumes = s.resumes()
		before := resumes
		pinging.Add(1)
		go func() {
			defer pinging.Done()
			defer busy.Store(false)
			// A ping that spanned a resume measured the outage, not the
			// path (status showed seconds on loopback after a paused
			// sandbox); the next one, sent at once, measures the path.
			if rtt, err := s.ys.Ping(); err == nil && s.resumes() == before {
				s.rtt.Store(int64(rtt))
			}
		}()
	}
	// At once: receive windows grow only once a round trip is known, and
	// status shows an RTT from the start.
	ping()
	for {
		select {
		case <-s.done:
			return
		case <-s.ys.CloseChan():
			return
		case <-ticker.C:
		}
		silent := s.tr.silence()
		if s.rc != nil {
			silent = min(silent, s.rc.sinceAttach())
		}
		if silent > deadAfter {
			if s.rc != nil {
				// Drop only the WebSocket; the session resumes on a new one.
				s.rc.Drop(fmt.Errorf("%w: nothing received for %s", ErrSessionDead, silent.Round(time.Millisecond)))
				continue
			}
			s.log.Warn("session silent, closing", "silent", silent.Round(time.Millisecond), "limit", deadAfter)
			s.dead.Store(true)
			// Dropped, not closed: a close handshake on a silent path
			// waits for an answer that will not come.
			Abort(s.tr.Conn)
			_ = s.ys.Close()
			return
		}
		if time.Since(lastPing) >= s.cfg.KeepAliveInterval || s.resumes() != resumes {
			ping()
		}
	}
}

// resumes is how often the transport resumed (0 for a v1 session).
func (s *Session) resumes() int64 {
	if s.rc == nil {
		return 0
	}
	return s.rc.Resumes()
}

// Ping measures one round trip now and records it.
func (s *Session) Ping() (time.Duration, error) {
	rtt, err := s.ys.Ping()
	if err != nil {
		return 0, fmt.Errorf("ping: %w", err)
	}
	s.rtt.Store(int64(rtt))
	return rtt, nil
}

// Open opens a stream and sends req as its header, then waits for the
// server's reply. A refusal is returned as a *StreamError.
func (s *Session) Open(ctx context.Context, req Request) (*Stream, error) {
	st, hdr, err := s.newStream(req)
	if err != nil {
		return nil, err
	}
	// ctx is enforced only through AfterFunc, which runs once ctx is done,
	// so an exchange cut by ctx always reports ctx.Err(); copying ctx's
	// deadline onto the stream would race ctx's own timer and could report
	// a bare i/o timeout instead.
	_ = st.SetDeadline(time.Now().Add(s.replyWait()))
	stop := context.AfterFunc(ctx, func() { _ = st.SetDeadline(time.Now()) })
	rep, err := s.exchange(st, hdr)
	stopped := stop()
	if err == nil {
		err = rep.Err()
	}
	if err == nil && !stopped {
		// ctx ended just as the reply arrived: the AfterFunc may set its
		// deadline after the one cleared below, so the stream is unusable.
		err = ctx.Err()
	}
	if err != nil {
		if ctx.Err() != nil {
			// Given up on (a proxy's connect timeout, say), maybe on a
			// detached session: a FIN would wait in the replay buffer and
			// keep the stream in the session for StreamCloseTimeout,
			// counted as open (NumStreams). A reset drops it now.
			st.Abort()
			return nil, ctx.Err()
		}
		_ = st.Close()
		return nil, err
	}
	_ = st.SetDeadline(time.Time{})
	return st, nil
}

// newStream opens a yamux stream for req and returns it with the encoded
// header, not yet sent.
func (s *Session) newStream(req Request) (*Stream, []byte, error) {
	hdr, err := req.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	// Before yamux sends the SYN: during a stalled bulk transfer the send
	// may wait behind a full replay buffer, and this stream's header
	// write (Stream.Write's want) with it.
	s.want()
	ys, err := s.ys.OpenStream()
	if err != nil {
		return nil, nil, s.wrapErr("open stream", err)
	}
	return s.wrap(ys), hdr, nil
}

// exchange writes the header and reads the reply.
func (s *Session) exchange(st *Stream, hdr []byte) (Reply, error) {
	if err := s.sendHeader(st, hdr); err != nil {
		return Reply{}, err
	}
	return s.readReply(st)
}

func (s *Session) sendHeader(st *Stream, hdr []byte) error {
	if _, err := st.Write(hdr); err != nil {
		return s.wrapErr("send stream header", err)
	}
	return nil
}

func (s *Session) readReply(st *Stream) (Reply, error) {
	rep, err := ReadReply(st)
	if err != nil {
		return Reply{}, s.wrapErr("read stream reply", err)
	}
	return rep, nil
}

// Accept waits for the peer's next stream. The caller reads its header
// with ReadRequest (see AcceptRequest).
func (s *Session) Accept() (*Stream, error) {
	ys, err := s.ys.AcceptStream()
	if err != nil {
		return nil, s.wrapErr("accept stream", err)
	}
	return s.wrap(ys), nil
}

// replyWait bounds the wait for a stream's reply: twice the header
// timeout. A server first connects the target, for up to its dial
// timeout (10 s by default, as the header timeout), so waiting only the
// header timeout would cut off the reply saying the target cannot be
// reached. On a resumable session it is at least this side's grace and
// a minute, as for yamux's own timeouts: a sandbox paused just as ssh
// started would otherwise fail a stream on a session that resumes. (The
// server's wait for a header counts only time attached: see
// ReadRequest.)
func (s *Session) replyWait() time.Duration {
	d := 2 * s.cfg.HeaderTimeout
	if s.rc != nil {
		d = max(d, s.rc.cfg.Grace+time.Minute)
	}
	return d
}

// ReadRequest reads a stream's header within HeaderTimeout, so a peer that
// opens streams and never sends a header cannot hold them. Time the peer
// cannot answer for does not count: on a resumable session the time
// spent detached (a stream whose opening arrived just before the path
// died gets its header with the replay, however long the outage), and on
// any session a silence of the whole session, as when the path stalls
// between a stream's opening and its header and the keepalive has yet
// to judge it (the header comes before anything heard after it).
func (s *Session) ReadRequest(st *Stream) (Request, error) {
	h := &headerReader{st: st, silence: s.tr.silence, budget: s.cfg.HeaderTimeout, full: s.cfg.HeaderTimeout, armedAt: time.Now()}
	if s.rc != nil {
		h.link = s.rc
		h.detAtArm = s.rc.Detached()
	}
	_ = st.SetReadDeadline(h.armedAt.Add(h.budget))
	req, err := ReadRequest(h)
	_ = st.SetReadDeadline(time.Time{})
	return req, err
}

// attachment is what headerReader asks of a Resumable.
type attachment interface {
	Detached() time.Duration
}

// headerReader reads a stream until its budget of the peer's time is
// spent: on a timeout it charges the time since it last armed the
// deadline, less the time detached meanwhile or the session's silence
// up to now, whichever is longer, and arms it again for what is left.
// After time not charged it waits at least a full header timeout, so a
// path that died just before the deadline does not have it re-armed
// ever closer. A peer that opens a stream, sends no header and pings
// now and then holds it a few header timeouts at most: each ping heard
// ends a silence, and the time before it is charged.
type headerReader struct {
	st       *Stream
	link     attachment           // nil unless resumable
	silence  func() time.Duration // since the session last heard a byte
	budget   time.Duration
	full     time.Duration
	armedAt  time.Time
	detAtArm time.Duration // link.Detached() at armedAt
	lastLook bool          // the spent budget's last short wait is taken
}

// lastLookWait is how long a header read whose budget is spent still
// waits once, when the session has just heard something: the header that
// ended a stall may be that very thing, heard by the session but not yet
// in the stream as the deadline fired.
const lastLookWait = 250 * time.Millisecond

// silentFloor is the shortest silence of a session taken as a stall: one
// carrying data hears from its peer every few milliseconds.
const silentFloor = time.Second

func (h *headerReader) Read(p []byte) (int, error) {
	for {
		n, err := h.st.Read(p)
		var ne net.Error
		if n > 0 || !errors.As(err, &ne) || !ne.Timeout() {
			return n, err
		}
		now := time.Now()
		elapsed := now.Sub(h.armedAt)
		var off, det time.Duration
		if h.link != nil {
			det = h.link.Detached()
			off = det - h.detAtArm
		}
		if sil := h.silence(); sil >= silentFloor {
			off = max(off, sil)
		}
		off = min(off, elapsed)
		h.budget -= elapsed - off
		if h.budget <= 0 {
			if h.lastLook || h.silence() >= silentFloor {
				return n, err
			}
			h.lastLook = true
			_ = h.st.SetReadDeadline(now.Add(lastLookWait))
			continue
		}
		wait := h.budget
		if off > 0 {
			wait = max(wait, h.full)
		}
		h.armedAt, h.detAtArm = now, det
		_ = h.st.SetReadDeadline(now.Add(wait))
	}
}

// Reply answers a stream's request, bounded by the write timeout.
func (s *Session) Reply(st *Stream, rep Reply) error {
	b, err := rep.MarshalBinary()
	if err != nil {
		return err
	}
	_ = st.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	_, err = st.Write(b)
	_ = st.SetWriteDeadline(time.Time{})
	return err
}

func (s *Session) wrap(ys *yamux.Stream) *Stream {
	return &Stream{Stream: ys, sess: s}
}

// wrapErr marks errors caused by the session ending, so callers can tell a
// dead session from a refused stream.
func (s *Session) wrapErr(op string, err error) error {
	if s.dead.Load() {
		return fmt.Errorf("%s: %w", op, ErrSessionDead)
	}
	if s.rc != nil {
		if cause := s.rc.Err(); cause != nil && !errors.Is(cause, net.ErrClosed) {
			return fmt.Errorf("%s: %w: %w", op, ErrSessionEnded, cause)
		}
	}
	if (s.ys.IsClosed() || sendFailed(err)) && !errors.Is(err, ErrSessionEnded) {
		return fmt.Errorf("%s: %w (%w)", op, ErrSessionEnded, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Resumable returns the session's resumable transport, or nil.
func (s *Session) Resumable() *Resumable { return s.rc }

// want tells a detached transport that a stream is being used (Want).
func (s *Session) want() {
	if s.rc != nil {
		s.rc.Want()
	}
}

// IsClosed reports whether the session has ended. A stream that read a
// clean EOF while this is true was cut by the session's end, not finished.
func (s *Session) IsClosed() bool { return s.ys.IsClosed() }

// ClosedByPeer reports whether the session ended because the peer closed
// it on purpose: END on a resumable session, the WebSocket's close frame
// on a v1 one. A lost connection is not that.
func (s *Session) ClosedByPeer() bool {
	if s.rc != nil {
		return errors.Is(s.rc.Err(), ErrPeerClosed)
	}
	if s.ys.IsClosed() {
		// Ended by a write that failed as the library closed the
		// connection on the peer's close frame: the read that brings
		// that close may not have returned yet. yamux's close, under
		// way, ends it (bounded by closeHandshakeWait).
		<-s.ys.RecvDone()
	}
	return s.tr.peerClosed.Load()
}

// Dead reports whether the watchdog closed the session for silence.
func (s *Session) Dead() bool { return s.dead.Load() }

// CloseChan is closed when the session ends.
func (s *Session) CloseChan() <-chan struct{} { return s.ys.CloseChan() }

// NumStreams is the number of open streams.
func (s *Session) NumStreams() int { return s.ys.NumStreams() }

// Bytes returns what the session received and sent on its transport,
// without taking any lock: a server's Stats, under its own lock, must
// not wait for a session whose peer stopped reading.
func (s *Session) Bytes() (in, out int64) { return s.tr.in.Load(), s.tr.out.Load() }

// ReceiveHeld is what the session's streams hold of its receive window:
// granted to the peer and not yet arrived, or arrived and not yet read,
// which is what the peer may make it buffer. It takes yamux's stream
// lock.
func (s *Session) ReceiveHeld() uint64 { return s.ys.ReceiveHeld() }

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	st := Stats{
		BytesIn:  s.tr.in.Load(),
		BytesOut: s.tr.out.Load(),
		Streams:  s.ys.NumStreams(),
		LastRTT:  time.Duration(s.rtt.Load()),
	}
	if s.rc != nil {
		st.Resumes, st.Replayed, st.Unacked = s.rc.Resumes(), s.rc.Replayed(), s.rc.Unacked()
	}
	return st
}

// Close ends the session and its streams and waits for the monitor.
func (s *Session) Close() error {
	err := s.ys.Close()
	s.once.Do(func() { close(s.done) })
	s.wg.Wait()
	_ = s.tr.Close()
	return err
}
