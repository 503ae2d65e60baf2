package yamux

import "weak"

// sandmux patch: a session-wide receive window.
//
// yamux has no connection-level flow control, as HTTP/2 and QUIC have:
// every stream's grant is its own, so a session whose readers stall (slow
// consumers of forwarded downloads, a target that stopped reading) buffers
// up to streams × window. Without a change to the protocol a receiver can
// only hold back its own grants, so MaxSessionReceiveWindow caps what a
// session's open streams hold together, granted to the peer and not yet
// arrived, or arrived and not yet read, as a connection window would,
// except that every stream may always hold initialStreamWindow, so that no
// stream waits for another to be read. A stream held back is granted more
// at its next read, once the others have been read or closed. A grant
// cannot be taken back, so streams start small (StartStreamWindowSize)
// and grow only while their reader keeps up (autotune.go): idle streams
// then hold little of the session's window.

// noteHeld records what the stream holds of its session's receive window.
// Call with recvLock held, after every change to recvWindow or recvBuf.
func (s *Stream) noteHeld() {
	s.tuner.held.Store(int64(s.recvWindow) + int64(s.recvBuf.Len()))
}

// grantFor is how much the stream may grant now to hold target in all.
// Call with recvLock held.
func (s *Stream) grantFor(target uint32) uint32 {
	held := uint64(s.recvWindow) + uint64(s.recvBuf.Len())
	if held >= uint64(target) {
		return 0
	}
	return target - uint32(held)
}

// shareOf caps want at what the session's receive window leaves beside
// the other streams' holdings, but never below initialStreamWindow. It
// takes streamLock, so call it without recvLock (lock order).
func (s *Stream) shareOf(want uint32) uint32 {
	limit := s.session.config.MaxSessionReceiveWindow
	if limit == 0 || want <= initialStreamWindow {
		return want
	}
	others := s.session.heldBy(s, limit)
	room := uint64(0)
	if others < limit {
		room = limit - others
	}
	if room >= uint64(want) {
		return want
	}
	return uint32(max(room, uint64(initialStreamWindow)))
}

// heldBy sums what the session's open streams other than self hold of
// its receive window, and what the streams that left the session still
// hold unread (draining). While no stream could reach its maximum window
// without the session exceeding limit, it returns 0 without summing.
func (s *Session) heldBy(self *Stream, limit uint64) uint64 {
	s.streamLock.Lock()
	defer s.streamLock.Unlock()
	if uint64(len(s.streams)+len(s.draining))*uint64(s.config.MaxStreamWindowSize) <= limit {
		return 0
	}
	return s.sumHeld(self)
}

// startSpare starts a stream about to join the session at
// SpareStartWindowSize instead of the start window while the session has
// room to spare: its streams hold, with this one's spare start, no more
// than an eighth of MaxSessionReceiveWindow. A small start costs a fresh
// transfer on a long path a round trip per doubling (four from 512 KiB
// to the 6 MB of a 1 Gbit/s, 50 ms path); it exists so that many idle
// streams hold little, and the first few streams of a session are not
// many. The extra is taken from the growth budget, as growth would be,
// and given back the same way. Call with streamLock held, before the
// stream is in the map, so that streams opened at the same moment see
// each other's spare start.
func (s *Session) startSpare(st *Stream) {
	limit := s.config.MaxSessionReceiveWindow
	spare := s.config.SpareStartWindowSize
	t := &st.tuner
	if limit == 0 || spare <= t.max || spare > s.config.MaxStreamWindowSize {
		return
	}
	if s.sumHeld(st)+uint64(spare) > limit/8 {
		return
	}
	grow := s.takeGrowth(spare - t.max)
	if grow == 0 {
		return
	}
	st.growthCell().add(grow) // a new stream's cell, not yet released
	t.max += grow
	// Counted as held before its grant is sent, for the next stream to
	// open; sendWindowUpdate's noteHeld then records what it granted.
	t.held.Store(int64(t.max))
}

// ReceiveHeld (sandmux patch) is what the session's streams hold of its
// receive window: granted to the peer and not yet received, or received
// and not yet read, which is what the peer may make it buffer.
func (s *Session) ReceiveHeld() uint64 {
	s.streamLock.Lock()
	defer s.streamLock.Unlock()
	return s.sumHeld(nil)
}

// sumHeld is heldBy's sum. Call with streamLock held.
func (s *Session) sumHeld(self *Stream) uint64 {
	var sum int64
	for _, st := range s.streams {
		if st != self {
			sum += st.tuner.held.Load()
		}
	}
	for id, w := range s.draining {
		st := w.Value()
		var unread int64
		if st != nil {
			unread = st.tuner.unread.Load()
		}
		if unread == 0 {
			delete(s.draining, id) // read, or garbage
			continue
		}
		if st != self {
			sum += unread
		}
	}
	return uint64(sum)
}

// keepDraining keeps counting a stream that leaves the session's map with
// bytes unread: a stream whose peer finished while its reader lags (a
// download whose client half-closed first) still holds them, up to a
// window each. Only what is unread counts, as no more can arrive. It is
// held weakly, so a stream dropped unread stops counting once garbage.
// Call with streamLock held.
func (s *Session) keepDraining(st *Stream) {
	if s.config.MaxSessionReceiveWindow > 0 && st.tuner.unread.Load() > 0 {
		s.draining[st.id] = weak.Make(st)
	}
}
