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
	rate float64   // bytes per second
	free time.Time // when the bytes taken so far have all left
}

func newLink(rate int64) *link {
	if rate <= 0 {
		return nil
	}
	return &link{rate: float64(rate)}
}

// depart takes n bytes that arrive at now and returns when their last
// byte has left, after everything taken before them. A nil link is
// infinitely fast.
func (l *link) depart(now time.Time, n int) time.Time {
	if l == nil {
		return now
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	start := now
	if l.free.After(start) {
		start = l.free
	}
	l.free = start.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	return l.free
}
