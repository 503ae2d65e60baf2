package conformance

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/coder/websocket"
)

// The §9 resumable byte stream of sandmux.v2, written from the spec.

const (
	msgData    = 0x00
	msgAck     = 0x01
	msgHello   = 0x02
	msgWelcome = 0x03
	msgEnd     = 0x04

	welcomeNew      = 0
	welcomeResumed  = 1
	welcomeUnknown  = 2
	welcomeDenied   = 3
	welcomeDisabled = 4

	maxDataPayload = 256<<10 + 12 // §9.1
)

var errEnded = errors.New("server sent END")

func hello(id [16]byte, secret [32]byte, received uint64) []byte {
	b := []byte{msgHello}
	b = append(b, id[:]...)
	b = append(b, secret[:]...)
	return binary.BigEndian.AppendUint64(b, received)
}

type welcome struct {
	Status   byte
	ID       [16]byte
	Secret   [32]byte
	Received uint64
	GraceMS  uint64
}

func parseWelcome(m []byte) (welcome, error) {
	if len(m) != 66 || m[0] != msgWelcome {
		return welcome{}, fmt.Errorf("not a WELCOME: % x", m[:min(len(m), 16)])
	}
	var w welcome
	w.Status = m[1]
	copy(w.ID[:], m[2:18])
	copy(w.Secret[:], m[18:50])
	w.Received = binary.BigEndian.Uint64(m[50:58])
	w.GraceMS = binary.BigEndian.Uint64(m[58:66])
	return w, nil
}

// readMsg reads one whole binary message.
func readMsg(ctx context.Context, c *websocket.Conn) ([]byte, error) {
	typ, m, err := c.Read(ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageBinary {
		return nil, fmt.Errorf("text message from the server")
	}
	return m, nil
}

// resumable is a client's v2 session byte stream: a sequence of attached
// WebSockets, the bytes sent but not acknowledged, and the count received.
type resumable struct {
	url string
	hdr http.Header

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	wmu    sync.Mutex // orders DATA (new and replayed) on the wire
	wg     sync.WaitGroup

	mu       sync.Mutex
	changed  chan struct{}
	ws       *websocket.Conn // nil while detached
	welcomed chan struct{}   // closed once the first WELCOME is in
	w        welcome
	sent     uint64 // offset after our last byte
	held     []byte // our bytes from heldFrom to sent, not acknowledged
	heldFrom uint64
	received uint64 // the server's bytes handed to yamux
	peerAck  uint64 // the last ACK the server sent
	in       []byte // received, not yet read
	ended    error  // over for good
	// test knobs
	deaf    *websocket.Conn   // its DATA is dropped uncounted, as if lost in transit
	dropped int               // bytes deaf dropped
	gone    []*websocket.Conn // WebSockets whose reading failed
}

func (r *resumable) broadcastLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *resumable) waitFor(ctx context.Context, cond func() bool) error {
	for {
		r.mu.Lock()
		if cond() {
			r.mu.Unlock()
			return nil
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// dialV2 makes a new session (§9.2). It sends its HELLO and returns at
// once without waiting for the WELCOME: the client MAY send DATA right
// after the HELLO, and the yamux opening written next does.
func dialV2(ctx context.Context, url string, hdr http.Header) (*resumable, error) {
	c, resp, err := dial(ctx, url, hdr, "sandmux.v2", "sandmux.v1")
	if err != nil {
		return nil, err
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "sandmux.v2" {
		c.CloseNow()
		return nil, fmt.Errorf("server picked %q, want sandmux.v2", got)
	}
	if err := c.Write(ctx, websocket.MessageBinary, hello([16]byte{}, [32]byte{}, 0)); err != nil {
		c.CloseNow()
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	r := &resumable{url: url, hdr: hdr, ctx: rctx, cancel: cancel, changed: make(chan struct{}), ws: c, welcomed: make(chan struct{})}
	r.wg.Add(1)
	go r.readLoop(c, true)
	return r, nil
}

// welcomeOf waits for the first WELCOME.
func (r *resumable) welcomeOf(ctx context.Context) (welcome, error) {
	select {
	case <-r.welcomed:
	case <-ctx.Done():
		return welcome{}, ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.w, r.ended
}

func (r *resumable) end(err error) {
	r.mu.Lock()
	if r.ended == nil {
		r.ended = err
	}
	r.broadcastLocked()
	r.mu.Unlock()
}

func (r *resumable) readLoop(c *websocket.Conn, first bool) {
	defer r.wg.Done()
	if first {
		err := r.readWelcome(c)
		close(r.welcomed)
		if err != nil {
			r.end(err)
			c.CloseNow()
			return
		}
	}
	for {
		m, err := readMsg(r.ctx, c)
		if err != nil {
			r.mu.Lock()
			if r.ws == c {
				r.ws = nil // detached; the test resumes
			}
			r.gone = append(r.gone, c)
			r.broadcastLocked()
			r.mu.Unlock()
			c.CloseNow()
			return
		}
		ack, err := r.handle(c, m)
		if err != nil {
			r.end(err)
			c.CloseNow()
			return
		}
		r.mu.Lock()
		current := r.ws == c
		r.mu.Unlock()
		if ack != nil && current { // nothing goes out before a WELCOME
			// A failed write shows as the next read failing.
			_ = c.Write(r.ctx, websocket.MessageBinary, ack)
		}
	}
}

func (r *resumable) readWelcome(c *websocket.Conn) error {
	m, err := readMsg(r.ctx, c)
	if err != nil {
		return fmt.Errorf("waiting for WELCOME: %w", err)
	}
	w, err := parseWelcome(m)
	if err != nil {
		return err
	}
	if w.Status != welcomeNew || w.ID == ([16]byte{}) || w.Secret == ([32]byte{}) || w.Received != 0 {
		return fmt.Errorf("bad WELCOME for a new session: %+v", w)
	}
	r.mu.Lock()
	r.w = w
	r.mu.Unlock()
	return nil
}

// handle takes one message; it returns the ACK to send, if any.
func (r *resumable) handle(c *websocket.Conn, m []byte) ([]byte, error) {
	if len(m) == 0 {
		return nil, errors.New("empty message")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.broadcastLocked()
	switch m[0] {
	case msgData:
		p := m[1:]
		if len(p) == 0 || len(p) > maxDataPayload {
			return nil, fmt.Errorf("DATA of %d bytes", len(p))
		}
		if c == r.deaf {
			r.dropped += len(p)
			return nil, nil
		}
		r.in = append(r.in, p...)
		r.received += uint64(len(p))
		// More often than §9.3 asks (every 256 KiB, and each second):
		// allowed, and it keeps the server's in-flight limit out of the way.
		return binary.BigEndian.AppendUint64([]byte{msgAck}, r.received), nil
	case msgAck:
		if len(m) != 9 {
			return nil, fmt.Errorf("ACK of %d bytes", len(m))
		}
		v := binary.BigEndian.Uint64(m[1:])
		if v > r.sent {
			return nil, fmt.Errorf("ACK %d beyond the %d bytes sent", v, r.sent)
		}
		if v > r.heldFrom { // an older ACK changes nothing (§9.3)
			r.held = r.held[v-r.heldFrom:]
			r.heldFrom = v
		}
		r.peerAck = max(r.peerAck, v)
	case msgEnd:
		r.ended = errEnded
	default:
		return nil, fmt.Errorf("message type %d", m[0])
	}
	return nil, nil
}

func (r *resumable) Read(p []byte) (int, error) {
	if err := r.waitFor(r.ctx, func() bool { return len(r.in) > 0 || r.ended != nil }); err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.in) == 0 {
		return 0, r.ended
	}
	n := copy(p, r.in)
	r.in = r.in[n:]
	return n, nil
}

// WriteFrame keeps p for replay and sends it if attached.
func (r *resumable) WriteFrame(p []byte) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	if r.ended != nil {
		r.mu.Unlock()
		return r.ended
	}
	r.held = append(r.held, p...)
	r.sent += uint64(len(p))
	c := r.ws
	r.mu.Unlock()
	if c != nil {
		// A failed write is replayed after the resume.
		_ = c.Write(r.ctx, websocket.MessageBinary, append([]byte{msgData}, p...))
	}
	return nil
}

// cut drops the WebSocket without a close handshake, as a lost path does.
func (r *resumable) cut() {
	r.mu.Lock()
	c := r.ws
	r.ws = nil
	r.mu.Unlock()
	if c != nil {
		c.CloseNow()
	}
}

// resume redials (§9.4) and, on status 1, replays from the server's count.
// It returns the WELCOME.
func (r *resumable) resume(ctx context.Context) (welcome, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	id, secret, rc := r.w.ID, r.w.Secret, r.received
	r.mu.Unlock()
	c, w, err := resumeHello(ctx, r.url, r.hdr, hello(id, secret, rc))
	if err != nil {
		return w, err
	}
	if w.Status != welcomeResumed {
		c.CloseNow()
		return w, nil
	}
	if w.ID != id {
		c.CloseNow()
		return w, fmt.Errorf("resumed WELCOME names another id")
	}
	r.mu.Lock()
	if w.Received < r.heldFrom || w.Received > r.sent {
		r.mu.Unlock()
		c.CloseNow()
		return w, fmt.Errorf("server received %d, we hold [%d, %d]", w.Received, r.heldFrom, r.sent)
	}
	r.held = r.held[w.Received-r.heldFrom:]
	r.heldFrom = w.Received
	replay := bytes.Clone(r.held)
	r.mu.Unlock()
	for len(replay) > 0 {
		n := min(len(replay), maxDataPayload)
		if err := c.Write(ctx, websocket.MessageBinary, append([]byte{msgData}, replay[:n]...)); err != nil {
			c.CloseNow()
			return w, err
		}
		replay = replay[n:]
	}
	r.mu.Lock()
	r.ws = c
	r.broadcastLocked()
	r.mu.Unlock()
	r.wg.Add(1)
	go r.readLoop(c, false)
	return w, nil
}

// resumeHello upgrades as a resume (Sandmux-Resume: 1, offering only v2),
// sends hello and reads the WELCOME.
func resumeHello(ctx context.Context, url string, hdr http.Header, hello []byte) (*websocket.Conn, welcome, error) {
	h := hdr.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Sandmux-Resume", "yes") // §1.1: any non-empty value is 1
	c, resp, err := dial(ctx, url, h, "sandmux.v2")
	if err != nil {
		return nil, welcome{}, err
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "sandmux.v2" {
		c.CloseNow()
		return nil, welcome{}, fmt.Errorf("resume: server picked %q", got)
	}
	if err := c.Write(ctx, websocket.MessageBinary, hello); err != nil {
		c.CloseNow()
		return nil, welcome{}, err
	}
	m, err := readMsg(ctx, c)
	if err != nil {
		c.CloseNow()
		return nil, welcome{}, fmt.Errorf("resume: waiting for WELCOME: %w", err)
	}
	w, err := parseWelcome(m)
	if err != nil {
		c.CloseNow()
		return nil, w, err
	}
	return c, w, nil
}

// Close sends END, closes the WebSocket and waits for the readers.
func (r *resumable) Close() error {
	r.mu.Lock()
	c := r.ws
	r.ws = nil
	if r.ended == nil {
		r.ended = errors.New("closed")
	}
	r.broadcastLocked()
	r.mu.Unlock()
	if c != nil {
		_ = c.Write(r.ctx, websocket.MessageBinary, []byte{msgEnd})
		_ = c.Close(websocket.StatusNormalClosure, "")
		c.CloseNow()
	}
	r.cancel()
	r.wg.Wait()
	return nil
}

func (w welcome) bytes() []byte {
	b := []byte{msgWelcome, w.Status}
	b = append(b, w.ID[:]...)
	b = append(b, w.Secret[:]...)
	b = binary.BigEndian.AppendUint64(b, w.Received)
	return binary.BigEndian.AppendUint64(b, w.GraceMS)
}

// serverResumable is the server's end of a new v2 session on c, whose
// HELLO has been read: it reads c at once (the client may send DATA
// behind its HELLO, §9.2) but sends nothing until attach.
func serverResumable(c *websocket.Conn, w welcome) *resumable {
	ctx, cancel := context.WithCancel(context.Background())
	r := &resumable{ctx: ctx, cancel: cancel, changed: make(chan struct{}), welcomed: make(chan struct{}), w: w}
	close(r.welcomed)
	r.wg.Add(1)
	go r.readLoop(c, false)
	return r
}

// attach is the server's answer (§9.2, §9.4): it drops the WebSocket
// attached before (its count is then final), sends w with that count,
// replays from the client's count rc and attaches c. For a new session
// c is already being read; for a resume its reader starts here.
func (r *resumable) attach(ctx context.Context, c *websocket.Conn, w welcome, rc uint64, resume bool) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	old := r.ws
	r.ws, r.deaf = nil, old
	w.Received = r.received
	if rc < r.heldFrom || rc > r.sent {
		r.mu.Unlock()
		return fmt.Errorf("client resumes at %d, we hold [%d, %d]", rc, r.heldFrom, r.sent)
	}
	r.held = r.held[rc-r.heldFrom:]
	r.heldFrom = rc
	replay := bytes.Clone(r.held)
	r.mu.Unlock()
	if old != nil {
		old.CloseNow()
	}
	if err := c.Write(ctx, websocket.MessageBinary, w.bytes()); err != nil {
		return err
	}
	for len(replay) > 0 {
		n := min(len(replay), maxDataPayload)
		if err := c.Write(ctx, websocket.MessageBinary, append([]byte{msgData}, replay[:n]...)); err != nil {
			return err
		}
		replay = replay[n:]
	}
	r.mu.Lock()
	r.ws = c
	ack := binary.BigEndian.AppendUint64([]byte{msgAck}, r.received)
	r.broadcastLocked()
	r.mu.Unlock()
	if resume {
		r.wg.Add(1)
		go r.readLoop(c, false)
	}
	return c.Write(ctx, websocket.MessageBinary, ack)
}
