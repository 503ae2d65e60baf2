package mux

import "github.com/hashicorp/yamux"

// Room for writes. The in-flight limit (inflight.go) keeps the queue on
// the connection short by holding back a data message until there is
// room for it. yamux writes every frame from one send loop, so a bulk
// frame waiting for room inside Write would hold back everything queued
// behind it, a keystroke as much as the next 256 KiB. So Resumable tells
// the send loop when a frame would wait (yamux.SendGate, the patched
// yamux's lanes.go), and the loop sends small frames meanwhile; a small
// message may exceed the limit by smallSlack, which adds no queue worth
// speaking of.

// smallMessage is the largest message (yamux header and body) that may
// use the slack: a data frame of the patched yamux's urgent lane
// (urgentBody, 4 KiB) with its header.
const smallMessage = 4<<10 + yamuxHeaderSize

// smallSlack is how far small messages may exceed the in-flight limit.
const smallSlack = 64 << 10

var _ yamux.SendGate = (*Resumable)(nil)

// Room reports whether a message of n bytes would be sent now rather
// than wait for acknowledgements. It is true once writes fail instead.
func (r *Resumable) Room(n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err != nil || r.closing || r.roomLocked(min(n, maxReplayMessage))
}

// RoomChanged receives a value whenever Room may have turned true.
func (r *Resumable) RoomChanged() <-chan struct{} { return r.roomCh }

// roomLocked reports whether a data message of size bytes fits under the
// in-flight limit, and beyond MinInFlight within the budget shared with
// other Resumables (ReplayBudget). Something always fits when nothing is
// in flight, so a message larger than the limit is not held forever.
func (r *Resumable) roomLocked(size int) bool {
	limit, own := r.win.limit(), r.cfg.MinInFlight
	if size <= smallMessage {
		limit += smallSlack
		own += smallSlack
	}
	inFlight := int(r.sent - r.acked)
	if r.sent == r.acked || inFlight+size <= own {
		return true
	}
	return inFlight+size <= limit && r.cfg.Budget.fits(r, uint64(size))
}

// wakeLocked wakes every wait for room or for a change of attachment:
// writePart's, and the send loop's (RoomChanged).
func (r *Resumable) wakeLocked() {
	r.cond.Broadcast()
	select {
	case r.roomCh <- struct{}{}:
	default:
	}
}
