package mux_test

import (
	"net"
	"sync"
	"testing"
	"time"
)

// slowUplink paces writes to rate bytes a second, as a slow uplink that
// keeps moving.
type slowUplink struct {
	net.Conn
	rate  float64
	mu    sync.Mutex
	start time.Time
	sent  int64
}

func (s *slowUplink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.start.IsZero() {
		s.start = time.Now()
	}
	n, err := s.Conn.Write(p)
	s.sent += int64(n)
	// Pacing, not synchronisation: the write returns no sooner than the
	// rate allows for the bytes sent so far.
	time.Sleep(time.Until(s.start.Add(time.Duration(float64(s.sent) / s.rate * float64(time.Second)))))
	return n, err
}

// Parallel uploads on a slow uplink that keeps moving outlast the write
// timeout: each 64 KiB frame waits about a second behind the other
// streams' frames, twice the timeout, and neither a stream nor the
// session fails. Before the patched yamux counted the connection's
// progress (third_party/yamux/writeprogress.go), the timeout ran from a
// frame's queueing and the streams' writes failed.
func TestSlowUplinkParallelUploadsOutlastWriteTimeout(t *testing.T) {
	const streams, size = 16, 128 << 10 // 2 MiB up at 1 MiB/s
	ccfg := fastConfig()
	ccfg.WriteTimeout = 500 * time.Millisecond
	cli, srv := newPair(t, pairOptions{
		client:     ccfg,
		wrapClient: func(c net.Conn) net.Conn { return &slowUplink{Conn: c, rate: 1 << 20} },
	})
	serve(t, srv, echo(srv))
	echoParallel(t, cli, streams, size)
}
