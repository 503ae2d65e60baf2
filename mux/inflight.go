package mux

import "time"

// inflight decides how many bytes a Resumable may have sent but not yet
// had acknowledged.
//
// The peer acknowledges bytes when its yamux reads them, so unacknowledged
// bytes are the queue on the one connection: on the path and in the socket
// buffers of both kernels. Every stream's bytes wait in that one queue, a
// keystroke behind 16 MiB of download as much as anything: with the replay
// buffer as the only limit, a 64-byte echo under load waited tens of
// milliseconds on loopback. A small fixed cap fixes that but starves a
// long path, which needs bandwidth × RTT in flight.
//
// So the limit follows the path's bandwidth-delay product, as BBR's does:
// twice the largest delivery rate seen lately times the smallest round
// trip seen on this WebSocket, never below a floor that keeps a local path
// busy between acknowledgements, nor above the replay buffer. Both
// estimates are filters (a maximum, a minimum), so the jitter of a busy
// machine, which delays acknowledgements by milliseconds, does not shrink
// the limit; twice the product lets the rate double each round trip while
// it grows. On loopback the product is tiny and the floor rules; at 50 ms
// it is what the path carries.
//
// The limit starts at the ceiling and does not fall until the path is
// full, as in BBR's start-up: until the delivery rate has stopped growing
// by a quarter per round trip for three round trips. The first
// acknowledgements of a transfer say little about the rate (they cover its
// first bytes, sent while yamux's initial 256 KiB stream window still held
// it back), and a limit cut to their figure would have to climb back by
// doubling, which costs a long path several round trips. After that it
// falls by at most half per round trip, and only while more than the
// product is in flight. On loopback a round trip is a fraction of a
// millisecond, so the floor is reached as soon as a queue forms.
//
// The smallest round trip is kept for the WebSocket's life, not expired
// after ten seconds as BBR does: BBR can re-measure it because it drains
// its queue for a moment (ProbeRTT), and a minimum re-measured under load
// without that would include the queue it is meant to exclude and let the
// limit creep up. The cost is a path that grows slower without its TCP
// connection breaking: its limit stays too small, down to the floor. A
// changed route usually breaks the connection, and a resume starts over.
type inflight struct {
	floor, ceil int
	cur         int           // the limit now
	updated     time.Time     // when cur was last set
	base        time.Duration // smallest round trip on this WebSocket; 0 = none yet
	// The delivery rate's maximum over the last one to two rateWindows,
	// in bytes per second: the current window's and the previous one's.
	rateCur, ratePrev float64
	rateStart         time.Time
	// Start-up: the path is full once the rate has grown less than
	// fullGrowth for fullRounds round trips in a row.
	full       bool
	roundStart time.Time
	roundRate  float64 // the rate when the round began
	flat       int     // rounds in a row without growth
}

const (
	fullGrowth = 1.25
	fullRounds = 3
)

// rateWindow is how long a delivery-rate sample counts: long enough to
// span many round trips of a WAN path, short enough that a slower path
// after a resume is believed within a second or two.
const rateWindow = time.Second

// bdpGain is the multiple of the bandwidth-delay product allowed in flight.
const bdpGain = 2

func newInflight(floor, ceil int) inflight {
	return inflight{floor: floor, ceil: ceil, cur: ceil}
}

// reset forgets the path: a new WebSocket may take another route.
func (w *inflight) reset() {
	*w = newInflight(w.floor, w.ceil)
}

// deliveryRate is the recent maximum delivery rate, in bytes per second.
func (w *inflight) deliveryRate() float64 { return max(w.rateCur, w.ratePrev) }

// frameRate is the rate frames are sized by (frameFor): the delivery
// rate, but during start-up at least the rate of v1's 64 KiB frames. The
// first acknowledgements cover bytes that yamux's initial 256 KiB window
// held back and say nothing of the path yet; sized by them, a transfer
// over a long fast path sent its first hundreds of milliseconds in 16 KiB
// frames, each costing a WebSocket message, at a fraction of its speed. A
// slow path leaves start-up within a few round trips, and frames shrink.
func (w *inflight) frameRate() float64 {
	r := w.deliveryRate()
	if !w.full {
		r = max(r, startFrameRate)
	}
	return r
}

// startFrameRate gives v1Frame-sized frames (frameFor).
const startFrameRate = float64(v1Frame) / float64(frameTime) * float64(time.Second)

// limit is how many bytes may be unacknowledged now.
func (w *inflight) limit() int { return w.cur }

// sample takes one acknowledgement at now: rtt is how long its last byte
// took to be acknowledged, delivered bytes were acknowledged over interval
// (since the acknowledgement that was the latest when that byte was sent),
// and inFlight bytes are still unacknowledged.
func (w *inflight) sample(now time.Time, rtt time.Duration, delivered uint64, interval time.Duration, inFlight int) {
	if rtt > 0 && (w.base == 0 || rtt < w.base) {
		w.base = rtt
	}
	if now.Sub(w.rateStart) >= rateWindow {
		w.ratePrev, w.rateCur, w.rateStart = w.rateCur, 0, now
	}
	// An interval shorter than the round trip would credit bytes sent
	// before that byte to a shorter time than they took.
	interval = max(interval, rtt)
	if interval > 0 {
		w.rateCur = max(w.rateCur, float64(delivered)/interval.Seconds())
	}
	rate := w.deliveryRate()
	if !w.full && now.Sub(w.roundStart) >= w.base {
		if rate >= w.roundRate*fullGrowth {
			w.flat = 0
		} else if w.flat++; w.flat >= fullRounds {
			w.full = true
		}
		w.roundStart, w.roundRate = now, rate
	}
	bdp := rate * w.base.Seconds() * bdpGain
	want := int(min(max(bdp, float64(w.floor)), float64(w.ceil)))
	switch {
	case want >= w.cur:
	case !w.full || inFlight <= want:
		want = w.cur // still starting, or no queue beyond the product
	default:
		// Fall by at most half of cur per round trip since the last update.
		frac := min(now.Sub(w.updated).Seconds()/w.base.Seconds(), 1) / 2
		want = max(want, w.cur-int(float64(w.cur)*frac))
	}
	w.cur, w.updated = want, now
}
