package mux

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
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

// maxMessage bounds one message read from the peer, so a hostile peer
// cannot make this side buffer more than this per message.
const maxMessage = 1 << 20

// maxReplayMessage caps each data message, new or replayed: the largest
// frame (Config.MaxFrame) with its header fits one.
const maxReplayMessage = 256<<10 + yamuxHeaderSize

// chunk is one data message kept until the peer acknowledges it.
type chunk struct {
	start uint64
	buf   []byte // the whole allocation, for putMsg
	msg   []byte // msg[0] is msgData; msg[1:] the payload; masked with key if masked
	// frame, when the message was built for a Link with Frames, is the
	// whole WebSocket frame: its header, then msg.
	frame  []byte
	key    [4]byte
	masked bool
	// For the delivery rate and round trip of its acknowledgement
	// (inflight.sample): when it was sent, and the latest acknowledgement then.
	sentAt      time.Time
	ackedAtSend uint64
	ackAtSend   time.Time
}

func (c chunk) end() uint64 { return c.start + uint64(len(c.msg)-1) }

// plain returns msg[from:] unmasked: a copy if msg is masked.
func (c chunk) plain(from int) []byte {
	if !c.masked {
		return c.msg[from:]
	}
	b := make([]byte, len(c.msg)-from)
	maskCopy(b, c.msg[from:], c.key, from)
	return b
}

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
	recv      uint64 // bytes handed to the reader so far
	ackSent   uint64

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
	r.trimLocked(peerRecv)
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

// trimLocked drops what the peer has received.
func (r *Resumable) trimLocked(upTo uint64) {
	if upTo > r.acked {
		r.acked = upTo
		// Room for the writer (writePart), even when no whole message
		// was acknowledged: an acknowledgement often ends inside one.
		r.wakeLocked()
	}
	i := 0
	for i < len(r.replay) && r.replay[i].end() <= r.acked {
		i++
	}
	if i > 0 {
		for _, c := range r.replay[:i] {
			r.freed = append(r.freed, c.buf)
		}
		// Shifted down in place: a new slice for every acknowledgement
		// made the next append allocate again, a third of the bytes a
		// client allocated on an upload, and every garbage collection
		// they brought on also emptied the message pools (getMsg).
		n := copy(r.replay, r.replay[i:])
		clear(r.replay[n:]) // pins no acknowledged buffer
		r.replay = r.replay[:n]
		if cap(r.replay) > replayKeep && n < cap(r.replay)/4 {
			r.replay = append([]chunk(nil), r.replay...) // after a burst of small messages
		}
	}
}

// replayKeep is how many entries the replay slice keeps room for however
// few it holds: 256 KiB messages enough for 64 MiB in flight.
const replayKeep = 256

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

// Write numbers p, keeps it for replay and sends it if attached. A yamux
// data header is held back and sent in one message with its body. Write
// blocks while the replay buffer is full.
func (r *Resumable) Write(p []byte) (int, error) {
	if !r.pending && len(p) == yamuxHeaderSize && p[1] == yamuxTypeData && binary.BigEndian.Uint32(p[8:]) > 0 {
		copy(r.hdr[:], p)
		r.pending = true
		return len(p), nil
	}
	var head []byte
	if r.pending {
		r.pending = false
		head = r.hdr[:]
	}
	rest := p
	for len(head)+len(rest) > 0 {
		n := min(len(rest), maxReplayMessage-len(head))
		if err := r.writePart(head, rest[:n]); err != nil {
			return 0, err
		}
		head, rest = nil, rest[n:]
	}
	return len(p), nil
}

// lockSendWithin takes sendMu unless the write in flight holds it longer
// than d (a peer that stopped reading).
func (r *Resumable) lockSendWithin(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !r.sendMu.TryLock() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// writePart sends head and part as one data message.
func (r *Resumable) writePart(head, part []byte) error {
	size := len(head) + len(part)
	// Wait for room without holding sendMu: room comes from acks, and
	// Attach needs sendMu to replay. There is one writer, so the room
	// found cannot be taken by another.
	r.mu.Lock()
	for r.err == nil && !r.roomLocked(size) {
		r.cond.Wait()
	}
	if r.err != nil {
		err := r.err
		r.mu.Unlock()
		return err
	}
	r.mu.Unlock()

	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	// Under sendMu the link can only be lost, not replaced (Attach holds
	// sendMu), so a frame built for this one is never sent on another.
	r.mu.Lock()
	closing, link := r.closing, r.link
	r.mu.Unlock()
	if closing {
		return net.ErrClosed
	}
	c := buildChunk(head, part, size, link)
	r.mu.Lock()
	now := time.Now()
	if r.sent == r.acked {
		// A flight starting from idle: its delivery rate is timed from now,
		// not from an acknowledgement of long ago.
		r.ackAt = now
	}
	c.start, c.sentAt, c.ackedAtSend, c.ackAtSend = r.sent, now, r.acked, r.ackAt
	r.replay = append(r.replay, c)
	r.sent += uint64(size)
	ws, gen, fw := r.ws, r.gen, r.link.Frames
	r.mu.Unlock()
	if ws != nil {
		var err error
		if c.frame != nil && fw != nil {
			err = fw.WriteFrame(c.frame)
		} else {
			err = ws.Write(noDeadline, websocket.MessageBinary, c.plain(0))
		}
		if err != nil {
			r.writeFailed(gen, ws, err)
		}
	}
	r.recycle()
	return nil
}

// buildChunk copies head and part into a new data message, built as a
// whole frame (masked on a client) when l writes frames itself. Taken
// under sendMu: a pooled buffer is recycled by an ack, and only a holder
// of sendMu sends, so a recycled buffer is never mid-send in Attach's
// replay.
func buildChunk(head, part []byte, size int, l Link) chunk {
	var buf []byte
	if size >= pooledMessage {
		buf = getMsg(frameRoom + 1 + size)
	} else {
		buf = make([]byte, frameRoom+1+size)
	}
	c := chunk{buf: buf, msg: buf[frameRoom:], masked: l.Frames != nil && l.Client}
	start, key := fillFrame(buf, c.masked, []byte{msgData}, head, part)
	if l.Frames != nil {
		c.frame, c.key = buf[start:], key
	}
	return c
}

// recycle returns acknowledged buffers to the pool. The caller holds
// sendMu, so none of them is being sent.
func (r *Resumable) recycle() {
	r.mu.Lock()
	freed := r.freed
	r.freed = r.freeSpare
	r.mu.Unlock()
	for _, b := range freed {
		putMsg(b)
	}
	clear(freed)
	r.freeSpare = freed[:0]
}

// Read returns session bytes from the current WebSocket, waiting through
// detachments. Bytes read from a WebSocket after it was detached are
// discarded: the peer replays them from the offset this side reports.
func (r *Resumable) Read(p []byte) (int, error) {
	for {
		if r.cur == nil {
			ws, gen, err := r.waitAttached()
			if err != nil {
				return 0, err
			}
			if err := r.nextData(ws, gen); err != nil {
				r.detach(gen, err)
				continue
			}
			if r.cur == nil {
				continue // a control message
			}
		}
		n, err := r.cur.Read(p)
		if errors.Is(err, websocket.ErrMessageTooBig) {
			// A protocol error (§9.1), not the path's, even if a write
			// detached first: resuming would bring the same message back.
			r.cur = nil
			r.Fail(fmt.Errorf("%w: a message over %d bytes", ErrResumeProtocol, maxMessage))
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			// Bytes that come with a transport error are not trusted:
			// coder/websocket returns a cut frame's partial payload still
			// masked. They are not counted, so the peer replays them.
			n = 0
		}
		r.mu.Lock()
		stale := r.curGen != r.gen
		if !stale {
			r.recv += uint64(n)
		}
		kick := r.recv-r.ackSent >= uint64(r.cfg.AckEvery)
		r.mu.Unlock()
		if stale {
			r.cur = nil
			continue
		}
		if kick {
			r.kickAck()
		}
		if err != nil {
			r.cur = nil
			if !errors.Is(err, io.EOF) {
				r.detach(r.curGen, err)
			}
			if n == 0 {
				continue
			}
		}
		return n, nil
	}
}

// AwaitWelcome is for a client that sends a new session's HELLO and goes
// on without waiting for the answer (spec §9.2): the first message read
// after the next Attach must be the WELCOME, which f takes; an error from
// f, or any other message first, ends the Resumable. Call it before that
// Attach.
func (r *Resumable) AwaitWelcome(f func(Welcome) error) { r.welcome.Store(&f) }

// takeWelcome returns the pending AwaitWelcome handler, once.
func (r *Resumable) takeWelcome() func(Welcome) error {
	if r.welcome.Load() == nil {
		return nil
	}
	if f := r.welcome.Swap(nil); f != nil {
		return *f
	}
	return nil
}

// nextData reads the next message header: data makes it the current
// reader; acks and an awaited welcome are applied here.
func (r *Resumable) nextData(ws *websocket.Conn, gen uint64) error {
	typ, rd, err := ws.Reader(noDeadline)
	if err != nil {
		return err
	}
	if typ != websocket.MessageBinary {
		r.Fail(fmt.Errorf("%w: text message", ErrResumeProtocol))
		return ErrResumeProtocol
	}
	var t [1]byte
	if _, err := io.ReadFull(rd, t[:]); err != nil {
		if errors.Is(err, io.EOF) { // the message's end, not the path's
			err = fmt.Errorf("%w: an empty message", ErrResumeProtocol)
			r.Fail(err)
		}
		return err
	}
	if f := r.takeWelcome(); f != nil {
		return r.applyWelcome(t[0], rd, f)
	}
	switch t[0] {
	case msgData:
		r.cur, r.curGen = rd, gen
		return nil
	case msgAck:
		// One byte more than an ACK's payload, to tell a longer message
		// from one: a malformed ACK ends the session (spec §9.1) rather
		// than failing the next read and resuming.
		var b [9]byte
		n, err := io.ReadFull(rd, b[:])
		if n != 8 || !errors.Is(err, io.ErrUnexpectedEOF) {
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				return err // the connection, not the message
			}
			err = fmt.Errorf("%w: ACK with %s payload, want 8 bytes", ErrResumeProtocol, ackLen(n))
			r.Fail(err)
			return err
		}
		if err := r.onAck(binary.BigEndian.Uint64(b[:8])); err != nil {
			r.Fail(err)
			return err
		}
		return nil
	case msgEnd:
		r.Fail(ErrPeerClosed)
		return ErrPeerClosed
	}
	err = fmt.Errorf("%w: unexpected message type %#x", ErrResumeProtocol, t[0])
	r.Fail(err)
	return err
}

// ackLen describes a malformed ACK's payload length, of which at most
// 9 bytes were read.
func ackLen(n int) string {
	if n > 8 {
		return "a longer"
	}
	return fmt.Sprintf("a %d-byte", n)
}

// applyWelcome reads the awaited WELCOME, whose type byte t is read, and
// hands it to f.
func (r *Resumable) applyWelcome(t byte, rd io.Reader, f func(Welcome) error) error {
	if t != msgWelcome {
		err := fmt.Errorf("%w: message type %#x before the welcome", ErrResumeProtocol, t)
		r.Fail(err)
		return err
	}
	// One byte more than a WELCOME, to tell a longer message from one.
	b := make([]byte, welcomeSize+1)
	b[0] = t
	n, err := io.ReadFull(rd, b[1:])
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF: //nolint:errorlint // ReadFull's own, unwrapped: the message ended, the WebSocket did not
		b, err = b[:1+n], nil // UnmarshalBinary rejects the size
	case err == nil:
		err = fmt.Errorf("%w: welcome longer than %d bytes", ErrResumeProtocol, welcomeSize)
		r.Fail(err)
		return err
	default:
		// Cut short: a session that never learned its id cannot be
		// resumed, which the resume loop reports.
		return err
	}
	var w Welcome
	err = w.UnmarshalBinary(b)
	if err == nil {
		err = f(w)
	}
	if err != nil {
		r.Fail(err)
	}
	return err
}

func (r *Resumable) onAck(v uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v > r.sent {
		return fmt.Errorf("%w: ack of byte %d, only %d sent", ErrResumeProtocol, v, r.sent)
	}
	if v > r.acked {
		// The chunk holding byte v-1, whose arrival the peer acknowledges.
		now := time.Now()
		if i := sort.Search(len(r.replay), func(i int) bool { return r.replay[i].end() >= v }); i < len(r.replay) {
			c := &r.replay[i]
			r.win.sample(now, now.Sub(c.sentAt), v-c.ackedAtSend, now.Sub(c.ackAtSend), int(r.sent-v))
			r.rate.Store(uint64(r.win.frameRate()))
		}
		r.ackAt = now
	}
	r.trimLocked(v)
	return nil
}

func (r *Resumable) waitAttached() (*websocket.Conn, uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.ws == nil && r.err == nil {
		r.cond.Wait()
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	return r.ws, r.gen, nil
}

func (r *Resumable) kickAck() {
	select {
	case r.ackKick <- struct{}{}:
	default:
	}
}

// background sends acknowledgements (never from the reader, which must
// not block on a write while the peer does the same) and runs the grace
// clock while detached.
func (r *Resumable) background() {
	defer r.wg.Done()
	step := min(time.Second, r.cfg.Grace/8)
	tick := time.NewTicker(step)
	defer tick.Stop()
	var clock *graceClock
	for {
		select {
		case <-r.done:
			return
		case <-r.ackKick:
		case <-tick.C:
		}
		r.mu.Lock()
		ws, gen, recv, need := r.ws, r.gen, r.recv, r.recv != r.ackSent
		detached := r.ws == nil && r.err == nil
		lostErr, attemptErr := r.lostErr, r.attemptErr
		if need && ws != nil {
			r.ackSent = recv
		}
		r.mu.Unlock()
		if !detached {
			clock = nil
		} else if clock == nil {
			clock = newGraceClock(step)
		} else if clock.tick() >= r.cfg.Grace {
			r.Fail(&NotResumedError{Within: r.cfg.Grace, Cause: lostErr, Last: attemptErr})
			return
		}
		if need && ws != nil {
			msg := binary.BigEndian.AppendUint64([]byte{msgAck}, recv)
			if err := ws.Write(noDeadline, websocket.MessageBinary, msg); err != nil {
				r.writeFailed(gen, ws, err)
			}
		}
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
