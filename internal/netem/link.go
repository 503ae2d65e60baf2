package netem

import (
	"sync"
	"time"
)

// link is the bottleneck of one direction, shared by every connection: it
// sends one byte at a time at rate, so connections share it as flows
// share a real link, first come first served, rather than each getting
// rate to itself.
type link struct {
	mu   sync.Mutex
	rate float64   // bytes per second; 0 is infinitely fast
	free time.Time // when the bytes taken so far have all left
}

func newLink(rate int64) *link {
	l := &link{}
	l.setRate(rate)
	return l
}

// setRate changes the rate for the bytes taken from now on; those taken
// before keep the departure they were given, but the link forgets the
// backlog they left: the bytes taken next leave as if it were empty,
// else a trickle's backlog (of connections since cut, too) would hold a
// recovered link for as long as the trickle would have needed to carry
// it. rate <= 0 is unlimited.
func (l *link) setRate(rate int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rate = float64(max(rate, 0))
	l.free = time.Time{}
}

// depart takes n bytes that arrive at now and returns when their last
// byte has left, after everything taken before them.
func (l *link) depart(now time.Time, n int) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := now
	if l.free.After(start) {
		start = l.free
	}
	if l.rate == 0 {
		return start
	}
	l.free = start.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	return l.free
}
