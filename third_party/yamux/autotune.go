package yamux

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// sandmux patch: receive-window auto-tuning.
//
// A stream moves at most one receive window per round trip, so on a long
// path a fixed window is either the limit (too small) or, on every stream
// whose reader stalls, a large amount of buffered memory (too big). As in
// quic-go (and Linux TCP's receive-buffer tuning), a stream starts with
// StartStreamWindowSize and doubles its window, up to MaxStreamWindowSize,
// whenever its reader drained more than half of it within about two round
// trips, that is, read faster than a quarter of what the window allows:
// then the window is what holds the stream back. All growth of a
// session's streams together is capped by MaxSessionWindowGrowth, and a
// stream gives its growth back only once it is closed and holds no more
// than its start window of unread bytes (or is garbage), so a session
// buffers at most streams × start + that cap. Windows never shrink while
// a stream is open.

const (
	// rttWindow is how long the smallest ping round trip stays the
	// estimate: pings queue behind bulk data, so the smallest recent one
	// is nearest the path's.
	rttWindow = time.Minute
	// maxTuneRTT caps the estimate: a ping that spanned an outage (a
	// resumed transport) must not make every reader look fast.
	maxTuneRTT = time.Second
)

// rttHolder keeps the smallest ping round trip of the last rttWindow.
type rttHolder struct {
	mu  sync.Mutex
	min time.Duration
	at  time.Time
}

func (r *rttHolder) store(d time.Duration) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.min == 0 || d <= r.min || now.Sub(r.at) > rttWindow {
		r.min, r.at = d, now
	}
}

// load returns the estimate, zero until a ping has returned.
func (r *rttHolder) load() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.min > maxTuneRTT {
		return maxTuneRTT
	}
	return r.min
}

// windowTuner is a stream's tuning state. recvLock guards max, read and
// the epoch; the rest is atomic because closeStream (with stateLock held,
// from processFlags) and the session window's sums (under streamLock)
// read it without recvLock.
type windowTuner struct {
	max        uint32    // the window this stream grants now
	read       uint64    // bytes the reader has taken, ever
	epochStart time.Time // when the current measurement began
	epochRead  uint64    // read at epochStart

	unread atomic.Int64               // recvBuf.Len(), for closeStream
	held   atomic.Int64               // recvWindow + recvBuf.Len() (sessionwindow.go)
	closed atomic.Bool                // closeStream ran
	cell   atomic.Pointer[growthCell] // set at the first growth
}

// growthCell holds what a stream took from its session's budget. It is
// separate from the Stream so that a cleanup can return it once the
// Stream is garbage.
type growthCell struct {
	grown atomic.Uint64 // bytes taken, or growthReleased
	sess  *Session
}

// growthReleased marks a cell whose growth went back to the session.
const growthReleased = 1 << 63

// startWindow is the window a new stream grants.
func (c *Config) startWindow() uint32 {
	if c.StartStreamWindowSize == 0 || c.StartStreamWindowSize > c.MaxStreamWindowSize {
		return c.MaxStreamWindowSize
	}
	if c.StartStreamWindowSize < initialStreamWindow {
		return initialStreamWindow
	}
	return c.StartStreamWindowSize
}

// tune grows the stream's window when the reader drained more than half
// of it within two round trips. Call with recvLock held.
func (s *Stream) tune() {
	t := &s.tuner
	limit := s.session.config.MaxStreamWindowSize
	if t.max >= limit || t.closed.Load() {
		return // a closed stream receives nothing more: no use for a larger window
	}
	read := t.read - t.epochRead
	if read <= uint64(t.max/2) {
		return
	}
	// quic-go's rule: a fraction f of the window read in under 4·f·RTT.
	now := time.Now()
	rtt := s.session.rtt.load()
	if rtt > 0 && now.Sub(t.epochStart) < time.Duration(4*float64(read)/float64(t.max)*float64(rtt)) {
		want := t.max // double
		if want > limit-t.max {
			want = limit - t.max
		}
		if grow := s.session.takeGrowth(want); grow > 0 {
			if s.growthCell().add(grow) {
				t.max += grow
			} else {
				s.session.giveGrowth(uint64(grow)) // released meanwhile
			}
			// closedForGrowth may have run meanwhile, before this stream
			// had a cell to release: it stored closed before it loaded the
			// cell, so this load sees it. Otherwise the growth stayed
			// taken until the stream was garbage.
			if t.closed.Load() {
				s.releaseIfDrained()
			}
		}
	}
	t.epochStart, t.epochRead = now, t.read
}

// growthCell returns the stream's cell, making it at the first growth.
// Call with recvLock held.
func (s *Stream) growthCell() *growthCell {
	if c := s.tuner.cell.Load(); c != nil {
		return c
	}
	c := &growthCell{sess: s.session}
	s.tuner.cell.Store(c)
	runtime.AddCleanup(s, (*growthCell).release, c)
	return c
}

// takeGrowth takes up to want bytes from the session's growth budget and
// then from the WindowBudget it shares with other sessions (budget.go),
// if any, and returns how many it got from both.
func (s *Session) takeGrowth(want uint32) uint32 {
	got := s.takeSessionGrowth(want)
	if got == 0 {
		return 0
	}
	shared := s.config.WindowBudget.take(uint64(got))
	if shared < uint64(got) {
		s.windowGrowth.Add(-(uint64(got) - shared))
	}
	return uint32(shared)
}

// giveGrowth gives back n bytes that takeGrowth took.
func (s *Session) giveGrowth(n uint64) {
	s.windowGrowth.Add(-n)
	s.config.WindowBudget.give(n)
}

// takeSessionGrowth is takeGrowth's part within MaxSessionWindowGrowth.
func (s *Session) takeSessionGrowth(want uint32) uint32 {
	limit := s.config.MaxSessionWindowGrowth
	for {
		used := s.windowGrowth.Load()
		got := uint64(want)
		if limit > 0 {
			if used >= limit {
				return 0
			}
			if got > limit-used {
				got = limit - used
			}
		}
		if s.windowGrowth.CompareAndSwap(used, used+got) {
			return uint32(got)
		}
	}
}

// add records grow more bytes, unless the cell was already released.
func (c *growthCell) add(grow uint32) bool {
	for {
		old := c.grown.Load()
		if old&growthReleased != 0 {
			return false
		}
		if c.grown.CompareAndSwap(old, old+uint64(grow)) {
			return true
		}
	}
}

// release returns the growth to the session's budget, once.
func (c *growthCell) release() {
	if old := c.grown.Swap(growthReleased); old&growthReleased == 0 && old > 0 {
		c.sess.giveGrowth(old)
	}
}

// noteUnread records how many bytes wait to be read and gives the growth
// back if the stream is closed and holds no more than a start window.
// Call with recvLock held, after every change to recvBuf.
func (s *Stream) noteUnread() {
	t := &s.tuner
	t.unread.Store(int64(s.recvBuf.Len()))
	s.noteHeld()
	if t.closed.Load() {
		s.releaseIfDrained()
	}
}

// closedForGrowth is closeStream's part: no more bytes will arrive.
func (s *Stream) closedForGrowth() {
	s.tuner.closed.Store(true)
	s.releaseIfDrained()
}

// releaseIfDrained gives the growth back once the unread bytes fit in the
// start window. closedForGrowth stores closed before it loads unread, and
// noteUnread stores unread before it loads closed, so one of them sees
// the other's store.
func (s *Stream) releaseIfDrained() {
	c := s.tuner.cell.Load()
	if c != nil && s.tuner.unread.Load() <= int64(s.session.config.startWindow()) {
		c.release()
	}
}
