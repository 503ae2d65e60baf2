package netem

import (
	"errors"
	"io"
	"net"
	"time"
)

// direction moves bytes one way through a pair. Reading and writing run in
// separate goroutines joined by a queue so that the delay is applied per
// chunk in parallel: many chunks are in flight at once, and throughput is
// bounded by MaxInFlight/Delay rather than by readSize/Delay.
type direction struct {
	src, dst *net.TCPConn
	delay    time.Duration
	// notBefore is the earliest release time of any chunk: the end of the
	// emulated handshake (Config.Handshake), or zero.
	notBefore time.Time
	q         *queue
	gate      *gate // Freeze: stops reading and writing
	own       *gate // Strand: the same, for this pair alone and for good
	// hold (FreezeToTarget), if set, stops writing only: bytes are still
	// read, up to the queue's bound, as a path takes them from the sender
	// before losing them.
	hold  *gate
	link  *link           // Config.Rate; nil is unlimited
	done  <-chan struct{} // closed when the pair is torn down
	abort func()          // resets the whole pair
	// reached counts bytes read, makes the freezes whose marks they
	// reach, and reports whether they reached a mark of Proxy.CutAt; cut
	// then cuts every pair.
	reached func(n int) bool
	cut     func()
}

// readLoop stamps each chunk with its release time as soon as it is read.
// It stops reading while frozen (Freeze, not FreezeToTarget) or while the
// queue is full, so the sender's kernel buffers fill and it feels the
// stall or backpressure.
func (d *direction) readLoop() {
	buf := getBuf(bigClass)
	defer func() { putBuf(buf) }()
	for {
		if !d.q.waitSpace(d.done) || !d.gate.wait(d.done) || !d.own.wait(d.done) {
			return
		}
		n, err := d.src.Read(*buf)
		if n > 0 && d.reached(n) {
			// This read's bytes die with the pair, as a dropped
			// path's would.
			d.cut()
			return
		}
		due := d.due(time.Now(), n)
		if n > 0 {
			c := chunk{n: n, due: due}
			if class := classOf(n); class < bigClass {
				c.buf = getBuf(class)
				copy(*c.buf, (*buf)[:n])
			} else {
				// Hand the full buffer over instead of copying 64 KiB.
				c.buf, buf = buf, getBuf(bigClass)
			}
			d.q.push(c)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				d.q.push(chunk{eof: true, due: due})
			} else {
				// Reset or local teardown: mirror it onto the other side
				// rather than pretending the stream ended cleanly.
				d.abort()
			}
			return
		}
	}
}

// open waits until every gate is open. It reports false if the pair is
// torn down first.
func (d *direction) open() bool {
	for {
		if !d.gate.wait(d.done) || !d.own.wait(d.done) {
			return false
		}
		if d.hold != nil && !d.hold.wait(d.done) {
			return false
		}
		// Freeze or Strand may have come while another gate was waited for.
		if !d.gate.frozen() && !d.own.frozen() {
			return true
		}
	}
}

// due is when a chunk of n bytes read at now may be written: once it has
// crossed the link (Config.Rate) and waited out the delay. The floor only
// holds back the first bytes. Chunks leave in the order read whatever
// their due times (the queue is first in, first out), so a Throttle that
// gives later bytes an earlier time reorders nothing.
func (d *direction) due(now time.Time, n int) time.Time {
	t := d.link.depart(now, n).Add(d.delay)
	if t.Before(d.notBefore) {
		return d.notBefore
	}
	return t
}

// writeLoop releases chunks in order, each no earlier than its due time, and
// turns the queued FIN into a half-close so the other direction keeps going.
func (d *direction) writeLoop() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		c, ok := d.q.pop(d.done)
		if !ok {
			return
		}
		if !d.sleepUntil(timer, c.due) || !d.open() {
			d.q.release(c)
			return
		}
		if c.eof {
			if err := d.dst.CloseWrite(); err != nil {
				d.abort()
			}
			return
		}
		_, err := d.dst.Write((*c.buf)[:c.n])
		d.q.release(c)
		if err != nil {
			d.abort()
			return
		}
	}
}

// sleepUntil reuses one timer per direction so steady-state forwarding does
// not allocate a timer per chunk.
func (d *direction) sleepUntil(timer *time.Timer, due time.Time) bool {
	wait := time.Until(due)
	if wait <= 0 {
		return true
	}
	timer.Reset(wait)
	select {
	case <-timer.C:
		return true
	case <-d.done:
		timer.Stop()
		return false
	}
}
