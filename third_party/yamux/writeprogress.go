package yamux

import "time"

// sandmux patch: the write timeout counts the connection's progress.
//
// Upstream armed one timer of ConnectionWriteTimeout for a frame's whole
// wait: to enter the send queue, behind the frames queued before it, and
// its own write. On a slow link that keeps moving (an uplink of a few
// Mbit/s carrying many busy streams), a frame could spend longer than
// that behind other streams' frames, and its stream's Write failed, or,
// when the timer fired during its own body's write, the session ended,
// for a connection that was never stuck. The timeout is there to find a
// connection that takes nothing (a peer that stopped reading, a dead
// path), so a frame's timer that fires now looks at when the send loop
// last completed a write: if within the timeout (and after the frame was
// queued, whichever is later), it is armed again for the rest.
//
// A large body is written in pieces of progressChunk, each one counted,
// so a single long write that moves counts as progress too. sandmux's
// frames are at most 256 KiB, so its writes are never split; a piece
// must take less than the timeout, which at 45 s is any link faster than
// about 6 KiB/s.

// progressChunk is the largest single write of a body.
const progressChunk = 256 << 10

// sinceEpoch is the monotonic time since the session started.
func (s *Session) sinceEpoch() time.Duration { return time.Since(s.epoch) }

// noteSent records a completed write: one atomic store, no lock.
func (s *Session) noteSent() { s.lastSent.Store(int64(s.sinceEpoch())) }

// writeBody writes body in pieces of at most progressChunk, noting each,
// and returns how much of it the connection took.
func (s *Session) writeBody(body []byte) (int, error) {
	sent := 0
	for sent < len(body) {
		end := len(body)
		if end-sent > progressChunk {
			end = sent + progressChunk
		}
		n, err := s.conn.Write(body[sent:end])
		sent += n
		if err != nil {
			return sent, err
		}
		s.noteSent()
	}
	return sent, nil
}

// notYet is a frame's start before its timer first fires.
const notYet = time.Duration(-1)

// sendStalled reports whether the connection took no write for the write
// timeout since *start (when the frame began to wait) or its last write,
// whichever is later. If it did, timer (fired and drained) is armed for
// the rest of the timeout from then. *start is notYet until the timer
// first fires, and then taken as the timeout before: a sender reads no
// clock unless its timer fires (a timer fires late, never early, so the
// start is, if anything, a little late).
func (s *Session) sendStalled(start *time.Duration, timer *time.Timer) bool {
	now := s.sinceEpoch()
	if *start == notYet {
		*start = now - s.config.ConnectionWriteTimeout
	}
	from := max(*start, time.Duration(s.lastSent.Load()))
	left := s.config.ConnectionWriteTimeout - (now - from)
	if left <= 0 {
		return true
	}
	timer.Reset(left)
	return false
}
