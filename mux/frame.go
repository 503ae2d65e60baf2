package mux

import "time"

// Frame sizing. Every stream's frames queue one after another on the one
// connection, so a keystroke can wait behind one whole frame per busy
// stream. A frame is therefore sized to take about frameTime at the
// session's measured delivery rate: 256 KiB on loopback or a fast path,
// where each frame (one WebSocket message, a write and a read on each
// side) costs CPU whatever its size, down to minFrame on a slow uplink.
const (
	frameTime = time.Millisecond
	minFrame  = 16 << 10
	// v1Frame is the frame of a sandmux.v1 session, which measures no rate.
	v1Frame = 64 << 10
)

// frameSize is the largest data frame to send now.
func (s *Session) frameSize() int {
	if s.rc == nil {
		return min(v1Frame, s.cfg.MaxFrame)
	}
	return frameFor(s.rc.FrameRate(), s.cfg.MaxFrame)
}

// frameFor is the frame that takes frameTime at rate bytes per second,
// within [minFrame, maxFrame].
func frameFor(rate float64, maxFrame int) int {
	n := int(rate * frameTime.Seconds())
	return min(max(n, minFrame), maxFrame)
}
