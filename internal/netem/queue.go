package netem

import (
	"sync"
	"time"
)

// chunk is one read's worth of bytes, or the sender's FIN, waiting for its
// release time. FIN travels through the queue like data so that it cannot
// overtake bytes read before it.
type chunk struct {
	buf *[]byte // nil for FIN
	n   int
	due time.Time
	eof bool
}

// queue is the bounded FIFO between one direction's reader and writer. It has
// exactly one producer and one consumer, which is why a one-slot signal
// channel per side is enough to never miss a wakeup.
type queue struct {
	mu    sync.Mutex
	ring  []chunk // grows by doubling and is then reused, so steady state does not allocate
	head  int
	count int
	bytes int // buffer capacity held by queued and being-written chunks
	max   int
	// waiting is the data bytes of the queued chunks, the one being
	// written excluded (Proxy.HeldToTarget).
	waiting int

	ready chan struct{} // signalled after push
	space chan struct{} // signalled after release
}

func newQueue(max int) *queue {
	return &queue{
		ring:  make([]chunk, 16),
		max:   max,
		ready: make(chan struct{}, 1),
		space: make(chan struct{}, 1),
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// waitSpace blocks until a full-size read could be queued without exceeding
// max. Checking before the read, rather than after, is what keeps the bound
// strict; an empty queue always admits one read so a tiny max cannot stall.
func (q *queue) waitSpace(done <-chan struct{}) bool {
	for {
		q.mu.Lock()
		ok := q.bytes == 0 || q.bytes+readSize <= q.max
		q.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-q.space:
		case <-done:
			return false
		}
	}
}

func (q *queue) push(c chunk) {
	q.mu.Lock()
	if q.count == len(q.ring) {
		grown := make([]chunk, 2*len(q.ring))
		n := copy(grown, q.ring[q.head:])
		copy(grown[n:], q.ring[:q.head])
		q.ring, q.head = grown, 0
	}
	q.ring[(q.head+q.count)%len(q.ring)] = c
	q.count++
	q.waiting += c.n
	if c.buf != nil {
		q.bytes += cap(*c.buf)
	}
	q.mu.Unlock()
	signal(q.ready)
}

// pop blocks for the oldest chunk. Its bytes stay counted until release, so
// the bound covers the chunk being written too.
func (q *queue) pop(done <-chan struct{}) (chunk, bool) {
	for {
		q.mu.Lock()
		if q.count > 0 {
			c := q.ring[q.head]
			q.ring[q.head] = chunk{} // drop the buffer reference
			q.head = (q.head + 1) % len(q.ring)
			q.count--
			q.waiting -= c.n
			q.mu.Unlock()
			return c, true
		}
		q.mu.Unlock()
		select {
		case <-q.ready:
		case <-done:
			return chunk{}, false
		}
	}
}

// release returns a popped chunk's buffer to its pool and its bytes to the
// reader's budget.
func (q *queue) release(c chunk) {
	if c.buf == nil {
		return
	}
	q.mu.Lock()
	q.bytes -= cap(*c.buf)
	q.mu.Unlock()
	putBuf(c.buf)
	signal(q.space)
}

// waitingBytes is how many data bytes wait behind the chunk being written.
func (q *queue) waitingBytes() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.waiting
}
