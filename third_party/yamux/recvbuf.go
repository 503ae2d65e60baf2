package yamux

// sandmux patch (see PATCHES.md): a stream's received data is kept as a
// queue of chunks instead of one bytes.Buffer. The bytes.Buffer grew by
// doubling whenever the reader had not drained it completely when a new
// frame arrived (hashicorp/yamux#43), allocating and zeroing a fresh slice
// each time, which cost a third of a busy tunnel's CPU and let one stream
// keep up to twice its window allocated forever.

import (
	"io"
	"sync"
)

// chunkSize is the size of a pooled chunk. Frames of at least half of it
// are read straight into chunks of their own; smaller ones are copied into
// the tail chunk, so at most one chunk per frame is under half full and
// the memory held stays under about twice the unread bytes.
const chunkSize = 64 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize); return &b }}

// recvQueue is the unread data of a stream, in order. Guarded by the
// stream's recvLock.
type recvQueue struct {
	chunks []*[]byte
	off    int // read offset into chunks[0]
	n      int // unread bytes
}

// Len returns the unread bytes.
func (q *recvQueue) Len() int { return q.n }

// Read copies unread bytes into p, releasing drained chunks.
func (q *recvQueue) Read(p []byte) int {
	total := 0
	for len(p) > 0 && len(q.chunks) > 0 {
		c := *q.chunks[0]
		n := copy(p, c[q.off:])
		p = p[n:]
		q.off += n
		total += n
		if q.off == len(c) {
			q.release(q.chunks[0])
			q.chunks[0] = nil
			q.chunks = q.chunks[1:]
			q.off = 0
		}
	}
	q.n -= total
	if len(q.chunks) == 0 {
		q.chunks = nil // let the emptied slice go
	}
	return total
}

// appendSmall copies b after the unread data, into the tail chunk while
// it has room.
func (q *recvQueue) appendSmall(b []byte) {
	q.n += len(b)
	for len(b) > 0 {
		if k := len(q.chunks); k > 0 {
			tail := q.chunks[k-1]
			if room := cap(*tail) - len(*tail); room > 0 {
				n := len(b)
				if room < n {
					n = room
				}
				*tail = append(*tail, b[:n]...)
				b = b[n:]
				continue
			}
		}
		q.chunks = append(q.chunks, chunkPool.Get().(*[]byte))
	}
}

// appendChunk adds c, a filled pooled chunk, after the unread data.
func (q *recvQueue) appendChunk(c *[]byte) {
	if len(*c) == 0 {
		q.release(c)
		return
	}
	q.n += len(*c)
	q.chunks = append(q.chunks, c)
}

// reset drops the unread data.
func (q *recvQueue) reset() {
	for _, c := range q.chunks {
		q.release(c)
	}
	*q = recvQueue{}
}

func (q *recvQueue) release(c *[]byte) {
	if cap(*c) == chunkSize {
		*c = (*c)[:0]
		chunkPool.Put(c)
	}
}

// readChunks reads exactly length bytes from r into pooled chunks and
// queues them; the last one may be partly filled. On an error the queue
// holds what was read before it.
func (q *recvQueue) readChunks(r io.Reader, length int) error {
	for length > 0 {
		c := chunkPool.Get().(*[]byte)
		n, err := io.ReadFull(r, (*c)[:minInt(length, chunkSize)])
		*c = (*c)[:n]
		q.appendChunk(c)
		length -= n
		if err != nil {
			return err
		}
	}
	return nil
}

// minInt is the builtin min, which this package's own min(uint32) hides.
func minInt(a, b int) int {
	if a < b {
		return a
	}
	return b
}
