package sshd

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// MaxStartups is OpenSSH's limit on connections not yet logged in
// (start:rate:full, 10:30:100 by default): from Start such connections
// on, a new one is dropped with probability Rate percent, rising linearly
// to every one at Full. Each may hold its slot for HandshakeTimeout, and
// anyone who can reach the server (the sandbox's public URL, without a
// token) can open them: without a limit they pile up as goroutines and
// memory. Dropping at random, rather than refusing all beyond a fixed
// number, leaves the real user's login a chance while a flood goes on.
type MaxStartups struct {
	Start, Rate, Full int
}

// String is OpenSSH's spelling, start:rate:full.
func (m MaxStartups) String() string { return fmt.Sprintf("%d:%d:%d", m.Start, m.Rate, m.Full) }

// Valid reports whether m is usable: 0 < Start <= Full, Rate 1..100.
func (m MaxStartups) Valid() bool {
	return m.Start > 0 && m.Start <= m.Full && m.Rate > 0 && m.Rate <= 100
}

// startups counts the server's connections not yet logged in.
type startups struct {
	limit MaxStartups
	mu    sync.Mutex
	n     int
	// Drops are reported at most once a dropReportEvery, with their
	// count, so that a flood of connections does not flood the log too.
	dropped    int
	reportedAt time.Time
}

// dropReportEvery is how often drops are logged during a flood.
const dropReportEvery = time.Minute

// admit takes a slot for a new connection, or reports that it is to be
// dropped. report is the number of connections dropped since the last
// report (this one included) when it is time to log them, else 0.
func (s *startups) admit(now time.Time) (ok bool, waiting, report int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.drop(s.n) {
		s.n++
		return true, s.n, 0
	}
	s.dropped++
	if now.Sub(s.reportedAt) < dropReportEvery {
		return false, s.n, 0
	}
	report, s.dropped, s.reportedAt = s.dropped, 0, now
	return false, s.n, report
}

// done gives a slot back: the connection logged in or went away.
func (s *startups) done() {
	s.mu.Lock()
	s.n--
	s.mu.Unlock()
}

// drop is OpenSSH's rule (sshd.c drop_connection) for a connection
// arriving while n others wait to log in.
func (s *startups) drop(n int) bool {
	l := s.limit
	switch {
	case n < l.Start:
		return false
	case n >= l.Full:
		return true
	}
	p := l.Rate
	if l.Full > l.Start {
		p += (100 - l.Rate) * (n - l.Start) / (l.Full - l.Start)
	}
	return rand.IntN(100) < p
}
