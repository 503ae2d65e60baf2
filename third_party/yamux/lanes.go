package yamux

// sandmux patch: two send lanes and a send gate.
//
// Upstream sends frames in the order they were queued, so a keystroke
// queued behind other streams' bulk frames waits for all of them, and
// when the connection holds back a bulk frame (a transport that limits
// what may be unacknowledged, as sandmux's resumable one does), for the
// acknowledgements that make room for it too. Here small frames (pings,
// window updates and data frames of at most urgentBody bytes, but no FIN
// or RST) take an urgent lane that the send loop serves first, and a conn
// that implements SendGate is asked before a bulk frame is written, so
// that the loop keeps serving the urgent lane while the bulk frame waits
// for room rather than blocking inside its write.
//
// The order within a stream is kept: a stream's Write waits until its
// frame is sent before queueing the next, FIN and RST (which must follow
// the stream's data) take the ordinary lane, and a SYN is sent and waited
// for before any data. A window update overtaking another stream's data,
// or its own stream's FIN, changes nothing the peer relies on. To keep a
// stream of small frames from starving bulk data, after urgentBudget
// bytes of urgent frames a waiting bulk frame goes next, and once a bulk
// frame waiting for room has let urgentBudget bytes of urgent frames
// past, they wait until it has gone: each takes some of the room it
// waits for, and a steady stream of them would keep it from ever having
// enough.

const (
	// urgentBody is the largest data frame body that takes the urgent
	// lane: keystrokes and terminal output, not bulk data.
	urgentBody = 4 << 10
	// urgentBudget bounds the urgent bytes sent while a bulk frame
	// waits, for its turn and then for room.
	urgentBudget = 256 << 10
)

// SendGate may be implemented by the connection a Session runs on, to
// hold back large frames without holding back small ones.
type SendGate interface {
	// Room reports whether a frame of n bytes (header and body) may be
	// written now without blocking for lack of room. It must report true
	// once writes would fail instead (the connection is closed).
	Room(n int) bool
	// RoomChanged receives a value whenever Room may have become true.
	// Spurious values are allowed; a missed one is not.
	RoomChanged() <-chan struct{}
}

// laneFor returns the lane of a frame with header hdr and a body of n
// bytes.
func (s *Session) laneFor(hdr header, n int) chan *sendReady {
	if n > urgentBody {
		return s.sendCh
	}
	switch hdr.MsgType() {
	case typePing:
		return s.urgentCh
	case typeData, typeWindowUpdate:
		if hdr.Flags()&(flagFIN|flagRST) == 0 {
			return s.urgentCh
		}
	}
	return s.sendCh
}

// lanes is the send loop's choice of the next frame.
type lanes struct {
	s    *Session
	gate SendGate // nil: the connection takes every frame as it comes
	held *sendReady
	// urgentRun counts urgent bytes sent since a bulk frame was last
	// taken: while it waits for its turn, and then for room.
	urgentRun int
}

func newLanes(s *Session) *lanes {
	g, _ := s.conn.(SendGate)
	return &lanes{s: s, gate: g}
}

// next returns the frame to send now, waiting for one; false once the
// session shuts down.
func (l *lanes) next() (*sendReady, bool) {
	s := l.s
	for {
		if l.held == nil {
			if l.urgentRun < urgentBudget {
				select {
				case r := <-s.urgentCh:
					return l.urgent(r), true
				default:
				}
			}
			select {
			case r := <-s.urgentCh:
				return l.urgent(r), true
			case r := <-s.sendCh:
				l.held, l.urgentRun = r, 0
			case <-s.shutdownCh:
				return nil, false
			}
		}
		if l.gate == nil || l.gate.Room(frameSize(l.held)) {
			r := l.held
			l.held = nil
			return r, true
		}
		// Urgent frames go out while the bulk frame waits for room, up
		// to the budget (see the top of this file).
		var urgent chan *sendReady
		if l.urgentRun < urgentBudget {
			urgent = s.urgentCh
		}
		select {
		case r := <-urgent:
			return l.urgent(r), true
		case <-l.gate.RoomChanged():
		case <-s.shutdownCh:
			return nil, false
		}
	}
}

func (l *lanes) urgent(r *sendReady) *sendReady {
	l.urgentRun += frameSize(r)
	return r
}

// frameSize is r's header and body.
func frameSize(r *sendReady) int {
	return len(r.Hdr) + len(r.Body)
}
