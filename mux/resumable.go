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

	"github.com/coder/websocket"
)

// ResumeConfig tunes a Resumable.
type ResumeConfig struct {
	// Buffer bounds the bytes sent but not yet acknowledged by the peer;
	// writes block beyond it. It holds only bytes in flight on the wire
	// (the peer acknowledges on receipt, before its streams read them), so
	// bandwidth×RTT is enough; it must be at least one fully grown yamux
	// window (mux.Config.MaxStreamWindow) so a single stream is never
	// limited by it.
	Buffer int
	// MinInFlight is the floor of the in-flight limit, which otherwise
	// follows the path's bandwidth × RTT (see inflight): enough to keep a
	// fast local path busy between acknowledgements.
	MinInFlight int
	// Grace is how long a detached transport waits to be resumed before it
	// fails for good. Time this process spends frozen does not count.
	Grace time.Duration
	// AckEvery is how many received bytes trigger an acknowledgement.
	AckEvery int
	// Budget, shared by several Resumables (a server's), bounds their
	// unacknowledged bytes together (ReplayBudget); nil bounds each alone.
	Budget *ReplayBudget
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
}

// DefaultResumeConfig allows up to 64 MiB in flight (one fully grown yamux
// stream window), at least 512 KiB, and keeps a detached session 10 min.
//
// The floor is the queue a keystroke waits behind on a fast local path,
// in each direction: with 1 MiB, a 64-byte echo beside four bulk streams
// on loopback took 6-8 ms at the median (make bench, scenario 5), with
// 512 KiB 4-5 ms, at the same bulk throughput and CPU per GiB. Below two
// acknowledgement intervals (AckEvery) the sender would stall between
// acknowledgements; acknowledging every 128 KiB to allow a lower floor
// cost 10-15 % of loopback throughput and as much more CPU.
func DefaultResumeConfig() ResumeConfig {
	return ResumeConfig{
		Buffer: 64 << 20, MinInFlight: 512 << 10,
		Grace: 10 * time.Minute, AckEvery: 256 << 10,
	}
}

// noDeadline is the context of every data read and write on a WebSocket.
// coder/websocket arms a context.AfterFunc for each message whose context
// can end, which cost a measurable share of the transport's CPU; none is
// needed, because every WebSocket that stops being the current one (detach,
// Fail) is closed, which ends its reads and writes.
var noDeadline = context.Background()

// Resumable is the byte stream a yamux session runs on, carried by a
// sequence of WebSockets. Bytes written are numbered and kept until the
// peer acknowledges them; after a WebSocket is lost, Attach on a new one
// replays exactly what the peer has not received, so the session above
// never notices beyond a pause. Reads block while detached.
type Resumable struct {
	cfg ResumeConfig
	log *slog.Logger

	ctx    context.Context // ends with the Resumable
	cancel context.CancelFunc

	sendMu sync.Mutex // orders appends+sends against Attach's replay

	mu      sync.Mutex
	cond    *sync.Cond // attach, detach, ack (room), close
	ws      *websocket.Conn
	link    Link          // ws's Link; zero while detached
	gen     uint64        // bumped on every attach and detach
	lost    chan struct{} // closed when the current attachment ends
	lostErr error
	// attemptErr is why the latest attempt to resume failed (NoteAttempt),
	// for the end of the grace period to say.
	attemptErr error
	err        error // set once: the permanent failure
	sent       uint64
	acked      uint64 // everything below is trimmed
	replay     []chunk
	win        inflight  // how much of the replay may be unacknowledged
	ackAt      time.Time // when the latest acknowledgement arrived
	// freed holds acknowledged buffers until a sender recycles them: an
	// ack can arrive while the message is still inside ws.Write (the peer
	// got every byte before the call returned), so the buffer may go back
	// to the shared pool only from under sendMu (see recycle).
	freed [][]byte
	// freeSpare, owned by sendMu's holder, is the slice freed becomes
	// after recycle takes it: the two alternate, so recycling allocates
	// nothing.
	freeSpare [][]byte
	// budgetGone: sent - acked went back to cfg.Budget as the Resumable
	// ended (Fail); until then, that is what it holds of it.
	budgetGone bool
	recv       uint64 // bytes handed to the reader so far
	ackSent    uint64

	// owned by the single writer (yamux's send loop)
	hdr     [yamuxHeaderSize]byte
	pending bool
	// owned by the single reader (yamux's receive loop)
	cur    io.Reader
	curGen uint64

	closing bool // under mu: Close has begun; no new data is sent
	// welcome takes the WELCOME a client that did not wait for it expects
	// as the first message (AwaitWelcome). Atomic: every message read
	// checks it, and it is nil on all but the first.
	welcome atomic.Pointer[func(Welcome) error]

	ackKick  chan struct{}
	roomCh   chan struct{} // see RoomChanged
	done     chan struct{}
	wg       sync.WaitGroup
	resumes  atomic.Int64
	replayed atomic.Int64
	rate     atomic.Uint64 // the in-flight limit's frameRate, bytes/s
	attached atomic.Int64  // UnixNano of the last Attach

	// under mu: time spent detached, for waits that an outage must not
	// use up (Detached)
	detachedSum time.Duration
	detachedAt  time.Time // zero while attached

	// detached mirrors detachedAt being set, for Want on every write
	// without taking mu; wanted carries Want's token to a client's
	// redialer.
	detached atomic.Bool
	wanted   chan struct{}
}

var _ net.Conn = (*Resumable)(nil)

// NewResumable returns a detached Resumable; Attach gives it its first
// WebSocket.
func NewResumable(cfg ResumeConfig) (*Resumable, error) {
	if cfg.Buffer < 256<<10 || cfg.Grace <= 0 || cfg.AckEvery <= 0 || cfg.MinInFlight > cfg.Buffer || cfg.AckEvery > cfg.MinInFlight/2 {
		return nil, fmt.Errorf("%w: resume buffer must be >= 256 KiB, grace positive, minimum in flight <= buffer, "+
			"ack interval positive and <= half the minimum in flight", ErrInvalidConfig)
	}
	log := cfg.Logger
	if log == nil {
		log = DiscardLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Resumable{
		cfg: cfg, log: log, ctx: ctx, cancel: cancel,
		win:  newInflight(cfg.MinInFlight, cfg.Buffer),
		lost: make(chan struct{}), ackKick: make(chan struct{}, 1), done: make(chan struct{}),
		roomCh: make(chan struct{}, 1), wanted: make(chan struct{}, 1),
	}
	close(r.lost) // detached until the first Attach
	r.detachedAt = time.Now()
	r.detached.Store(true)
	r.rate.Store(uint64(r.win.frameRate()))
	r.cond = sync.NewCond(&r.mu)
	r.wg.Add(1)
	go r.background()
	return r, nil
}

// Want tells whoever redials (Wanted), if the Resumable is detached,
// that someone is using the session now: a keystroke, a new stream. Only
// a client redials; on a server the token is never taken, and Want costs
// an atomic load.
func (r *Resumable) Want() {
	if !r.detached.Load() {
		return
	}
	select {
	case r.wanted <- struct{}{}:
	default:
	}
}

// Wanted receives a token when Want was called while detached: a
// redialer waiting out a long backoff tries again sooner, as someone
// waits for the session. A token may be left from an earlier outage.
func (r *Resumable) Wanted() <-chan struct{} { return r.wanted }

// Lost returns a channel closed when the current WebSocket is lost (or
// at once, if detached).
func (r *Resumable) Lost() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lost
}

// Done is closed when the Resumable has failed for good or was closed.
func (r *Resumable) Done() <-chan struct{} { return r.done }

// Err is the permanent failure, or nil while the Resumable lives.
func (r *Resumable) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Received is how many bytes of the session this side has received.
func (r *Resumable) Received() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recv
}

// sinceAttach is how long ago the current WebSocket was attached; a fresh
// one has had no chance to deliver bytes yet, so it is not judged silent.
func (r *Resumable) sinceAttach() time.Duration {
	return time.Duration(time.Now().UnixNano() - r.attached.Load())
}

// FrameRate is the rate, in bytes per second, that frames are sized by:
// the recent maximum rate at which the peer acknowledged this side's
// bytes, but not below v1's frame rate while the path is in start-up.
func (r *Resumable) FrameRate() float64 { return float64(r.rate.Load()) }

// Unacked is how many sent bytes the peer has not acknowledged yet.
func (r *Resumable) Unacked() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int64(r.sent - r.acked)
}

// Resumes counts attachments after the first.
func (r *Resumable) Resumes() int64 { return r.resumes.Load() }

// Replayed counts the bytes resent after resumes.
func (r *Resumable) Replayed() int64 { return r.replayed.Load() }

// Attach makes l.WS the carrier, after detaching any current one.
// peerRecv is how much the peer has received; everything after it is
// replayed before new bytes. welcome, if not nil, runs first with this
// side's own received count (which cannot change while detached), so the
// server can answer the hello before the replay starts.
func (r *Resumable) Attach(l Link, peerRecv uint64, welcome func(received uint64) error) (<-chan struct{}, error) {
	ws := l.WS
	// Dropped before taking sendMu, which a write blocked on a peer that
	// stopped reading may hold until its WebSocket is closed; and again
	// under it, for an Attach that overlapped this one and won sendMu
	// first (a client that gave up on a handshake and redialled): its
	// attachment would otherwise stay open with nobody told it ended.
	replaced := errors.New("replaced by a new connection")
	r.Drop(replaced)
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	r.Drop(replaced)
	r.mu.Lock()
	if r.err != nil {
		err := r.err
		r.mu.Unlock()
		return nil, err
	}
	recv := r.recv
	// Checked before the welcome, which must not tell a peer "resumed"
	// for a session this ends. (Neither bound moves while detached.)
	if peerRecv < r.acked || peerRecv > r.sent {
		err := fmt.Errorf("%w: peer resumes at byte %d, this side holds %d..%d", ErrResumeProtocol, peerRecv, r.acked, r.sent)
		r.mu.Unlock()
		r.Fail(err)
		return nil, err
	}
	r.mu.Unlock()
	if welcome != nil {
		if err := welcome(recv); err != nil {
			return nil, err
		}
	}
	ws.SetReadLimit(maxMessage)

	r.mu.Lock()
	if r.err != nil {
		// Failed during the welcome (the grace ran out, or Close): the
		// peer must not be left holding a session that is gone. Told
		// "resumed" a moment ago, it hears END as from Close (§9.6),
		// instead of a dropped connection it would try to resume.
		err := r.err
		r.mu.Unlock()
		if welcome != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if ws.Write(ctx, websocket.MessageBinary, []byte{msgEnd}) == nil {
				linger(ws, closeBudget/2)
			}
			cancel()
		}
		return nil, err
	}
	freed := r.trimLocked(peerRecv)
	r.win.reset()
	now := time.Now()
	r.ackAt = now
	for i := range r.replay {
		// Replayed now: its round trip must not include the outage.
		r.replay[i].sentAt, r.replay[i].ackedAtSend, r.replay[i].ackAtSend = now, r.acked, now
	}
	first := r.gen == 0
	r.ws, r.link, r.lostErr, r.attemptErr = ws, l, nil, nil
	r.gen++
	if !r.detachedAt.IsZero() {
		r.detachedSum += now.Sub(r.detachedAt)
		r.detachedAt = time.Time{}
	}
	r.detached.Store(false)
	r.lost = make(chan struct{})
	lost := r.lost
	r.attached.Store(time.Now().UnixNano())
	gen := r.gen
	todo := append([]chunk(nil), r.replay...)
	if !first {
		// Counted before the reader wakes: a ping whose pong arrives on
		// this attachment must see that it spanned a resume
		// (Session.monitor).
		r.resumes.Add(1)
	}
	r.wakeLocked()
	r.mu.Unlock()
	r.cfg.Budget.release(freed)

	var n int64
	for _, c := range todo {
		from := 1
		if c.start < peerRecv {
			from += int(peerRecv - c.start)
		}
		payload := c.plain(from)
		for len(payload) > 0 {
			part := payload[:min(len(payload), maxReplayMessage)]
			msg := append([]byte{msgData}, part...)
			if err := ws.Write(noDeadline, websocket.MessageBinary, msg); err != nil {
				r.writeFailed(gen, ws, err)
				return lost, nil // the next Attach replays again
			}
			n += int64(len(part))
			payload = payload[len(part):]
		}
	}
	r.replayed.Add(n)
	if !first {
		r.log.Info("transport resumed", "replayed", n, "received", recv)
	}
	return lost, nil
}

// Detached is the time this side has spent without a WebSocket so far,
// the current outage included. A wait that an outage must not use up
// (a stream's header on its way when the path died) counts time minus
// the growth of this.
func (r *Resumable) Detached() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.detachedAt.IsZero() {
		return r.detachedSum
	}
	return r.detachedSum + time.Since(r.detachedAt)
}

// NoteAttempt records why an attempt to resume failed (nil: it has not
// failed yet), so that a grace period that runs out says why it could not
// be resumed as well as how the connection was lost.
func (r *Resumable) NoteAttempt(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ws == nil && r.err == nil {
		r.attemptErr = err
	}
}

// Detachment reports when the current outage began and what caused it;
// since is zero while attached (and cause nil).
func (r *Resumable) Detachment() (since time.Time, cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ws != nil || r.err != nil {
		return time.Time{}, nil
	}
	return r.detachedAt, r.lostErr
}

// Attached reports whether a WebSocket currently carries the session.
func (r *Resumable) Attached() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ws != nil
}

// Drop abandons the current WebSocket (a dead path, a silent peer); the
// owner is told through Lost and attaches a new one.
func (r *Resumable) Drop(err error) {
	r.mu.Lock()
	gen := r.gen
	r.mu.Unlock()
	r.detach(gen, err)
}

// detach ends attachment gen, if it is still the current one.
func (r *Resumable) detach(gen uint64, err error) {
	r.mu.Lock()
	if gen != r.gen || r.ws == nil {
		r.mu.Unlock()
		return
	}
	if r.closing {
		// Close has begun (the peer closing on END, say): the loss is
		// final. Lost and Done close together in Fail, so an owner woken
		// by Lost never redials a session this side is ending.
		r.mu.Unlock()
		r.Fail(net.ErrClosed)
		return
	}
	ws := r.ws
	r.ws, r.link, r.lostErr = nil, Link{}, err
	r.gen++
	r.detachedAt = time.Now()
	r.detached.Store(true)
	close(r.lost)
	r.wakeLocked()
	r.mu.Unlock()
	r.log.Info("transport lost; waiting to resume", "err", err)
	_ = ws.CloseNow()
}

// writeFailed handles a failed write on attachment gen. A write that
// finds the connection closed cannot say why: the reader closed it on a
// bad message (coder/websocket sends the close frame before the read
// returns), or the peer did. The reader, always pending on an attached
// WebSocket, reports the loss with its reason; closing the connection
// makes it fail now if it has not yet.
func (r *Resumable) writeFailed(gen uint64, ws *websocket.Conn, err error) {
	if errors.Is(err, net.ErrClosed) {
		_ = ws.CloseNow()
		return
	}
	r.detach(gen, err)
}

// Fail ends the Resumable for good with err; reads and writes return it.
func (r *Resumable) Fail(err error) {
	r.mu.Lock()
	if r.err != nil {
		r.mu.Unlock()
		return
	}
	r.err = err
	var unbudget uint64
	if !r.budgetGone {
		// Its replay is of no more use: room for the others.
		unbudget, r.budgetGone = r.sent-r.acked, true
		r.cfg.Budget.forget(r)
	}
	ws := r.ws
	r.ws, r.link = nil, Link{}
	r.gen++
	// Done before Lost: an owner woken by Lost checks Done next (see
	// client.resumeLoop), and must find it closed, or it redials a
	// transport that is ending.
	close(r.done)
	select {
	case <-r.lost:
	default:
		close(r.lost)
	}
	r.wakeLocked()
	r.mu.Unlock()
	r.cfg.Budget.release(unbudget)
	r.cancel()
	if ws != nil {
		_ = ws.CloseNow()
	}
}

// Close ends the Resumable and waits for its background goroutine. The
// peer is told that the session ended, so it fails its side at once
// instead of trying to resume it: new data writes stop, the frame in flight
// (if any) is finished, and then END goes out as the only message, bounded
// in time in case the peer has stopped reading.
func (r *Resumable) Close() error {
	deadline := time.Now().Add(closeBudget)
	r.mu.Lock()
	r.closing = true
	ws := r.ws
	r.mu.Unlock()
	ended := false
	if ws != nil && r.lockSendWithin(2*time.Second) {
		ctx, cancel := context.WithTimeout(r.ctx, 2*time.Second)
		ended = ws.Write(ctx, websocket.MessageBinary, []byte{msgEnd}) == nil
		cancel()
		r.sendMu.Unlock()
	}
	if ended {
		// Keep the WebSocket (Fail would close it at once) for a close
		// handshake below.
		r.mu.Lock()
		if r.ws == ws {
			r.ws, r.link = nil, Link{}
		}
		r.mu.Unlock()
	}
	r.Fail(net.ErrClosed)
	r.wg.Wait()
	if ended {
		linger(ws, time.Until(deadline))
	}
	return nil
}

// closeBudget bounds all of Close (the wait to send END, END itself and
// the close handshake after it): a server's whole shutdown has to fit in
// --shutdown-timeout (5 s in the tests).
const closeBudget = 4 * time.Second

// linger closes ws with its handshake, which reads (and drops) what the
// peer still sends until its close arrives, the peer closing on END.
// Closing the socket at once while the peer's data is unread makes the
// kernel send RST, and an RST can destroy END in the peer's receive queue
// before it is read: the peer would then wait to resume a session that is
// gone. A peer that has not answered within d is cut off.
func linger(ws *websocket.Conn, d time.Duration) {
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = ws.Close(websocket.StatusNormalClosure, "session ended")
	}()
	select {
	case <-closed:
	case <-time.After(max(d, 0)):
		_ = ws.CloseNow()
		<-closed
	}
}

// resumableAddr is the address a Resumable reports: it has no single one.
type resumableAddr struct{}

func (resumableAddr) Network() string { return "websocket" }
func (resumableAddr) String() string  { return "sandmux-resumable" }

// LocalAddr implements net.Conn.
func (r *Resumable) LocalAddr() net.Addr { return resumableAddr{} }

// RemoteAddr implements net.Conn.
func (r *Resumable) RemoteAddr() net.Addr { return resumableAddr{} }

// SetDeadline implements net.Conn; yamux sets none on its transport, and
// the Resumable's own liveness comes from Drop and the grace clock.
func (r *Resumable) SetDeadline(time.Time) error { return nil }

// SetReadDeadline implements net.Conn (see SetDeadline).
func (r *Resumable) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline implements net.Conn (see SetDeadline).
func (r *Resumable) SetWriteDeadline(time.Time) error { return nil }
