package mux

import (
	"encoding/binary"
	"fmt"
	"net"
	"sort"
	"time"

	"github.com/coder/websocket"
)

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

// trimLocked drops what the peer has received. It returns how many bytes
// that gives back to cfg.Budget, for the caller to release once it has
// let go of mu.
func (r *Resumable) trimLocked(upTo uint64) (freed uint64) {
	if upTo > r.acked {
		if !r.budgetGone {
			freed = upTo - r.acked
		}
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
	return freed
}

// replayKeep is how many entries the replay slice keeps room for however
// few it holds: 256 KiB messages enough for 64 MiB in flight.
const replayKeep = 256

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
	if !r.budgetGone {
		r.cfg.Budget.add(uint64(size))
	}
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

func (r *Resumable) onAck(v uint64) error {
	r.mu.Lock()
	if sent := r.sent; v > sent {
		r.mu.Unlock()
		return fmt.Errorf("%w: ack of byte %d, only %d sent", ErrResumeProtocol, v, sent)
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
	freed := r.trimLocked(v)
	r.mu.Unlock()
	r.cfg.Budget.release(freed)
	return nil
}
