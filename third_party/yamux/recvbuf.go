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

// chunkSize is the size of the smallest pooled chunk. Frames of at least
// half of it are read straight into chunks of their own, of the smallest
// class that holds them (up to maxChunk); smaller frames are copied into
// the tail chunk. So at most one chunk per frame is under half full and
// the memory held stays under about twice the unread bytes.
const chunkSize = 64 << 10

// maxChunk is the largest class. A frame up to it is read into one chunk
// with one read, and lent by Stream.ReadChunk to be written on with one
// write: the chunk is the buffer the bytes cross the process in.
const maxChunk = 4 * chunkSize

// chunkPools hold chunks of chunkSize << i.
var chunkPools = [3]sync.Pool{
	{New: func() any { b := make([]byte, 0, chunkSize); return &b }},
	{New: func() any { b := make([]byte, 0, 2*chunkSize); return &b }},
	{New: func() any { b := make([]byte, 0, 4*chunkSize); return &b }},
}

// getChunk returns an empty pooled chunk of at least n bytes (n <= maxChunk).
func getChunk(n int) *[]byte {
	i := 0
	for chunkSize<<i < n {
		i++
	}
	return chunkPools[i].Get().(*[]byte)
}

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
			releaseChunk(q.chunks[0])
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

// take removes the oldest chunk and returns it, with its unread bytes.
// The queue is not empty.
func (q *recvQueue) take() (*[]byte, []byte) {
	c := q.chunks[0]
	b := (*c)[q.off:]
	q.chunks[0] = nil
	q.chunks = q.chunks[1:]
	if len(q.chunks) == 0 {
		q.chunks = nil
	}
	q.off = 0
	q.n -= len(b)
	return c, b
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
		q.chunks = append(q.chunks, getChunk(chunkSize))
	}
}

// appendChunk adds c, a filled pooled chunk, after the unread data.
func (q *recvQueue) appendChunk(c *[]byte) {
	if len(*c) == 0 {
		releaseChunk(c)
		return
	}
	q.n += len(*c)
	q.chunks = append(q.chunks, c)
}

// reset drops the unread data.
func (q *recvQueue) reset() {
	for _, c := range q.chunks {
		releaseChunk(c)
	}
	*q = recvQueue{}
}

// releaseChunk returns a chunk to its pool.
func releaseChunk(c *[]byte) {
	for i := range chunkPools {
		if cap(*c) == chunkSize<<i {
			*c = (*c)[:0]
			chunkPools[i].Put(c)
			return
		}
	}
}

// readChunks reads exactly length bytes from r into pooled chunks and
// queues them; the last one may be partly filled. On an error the queue
// holds what was read before it.
func (q *recvQueue) readChunks(r io.Reader, length int) error {
	got, err := readChunks(r, length)
	for _, c := range got {
		q.appendChunk(c)
	}
	return err
}

// readChunks reads exactly length bytes from r into pooled chunks, the
// last one perhaps partly filled; on an error, those read before it.
func readChunks(r io.Reader, length int) ([]*[]byte, error) {
	var got []*[]byte
	for length > 0 {
		want := minInt(length, maxChunk)
		c := getChunk(want)
		n, err := io.ReadFull(r, (*c)[:want])
		*c = (*c)[:n]
		got = append(got, c)
		length -= n
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

// minInt is the builtin min, which this package's own min(uint32) hides.
func minInt(a, b int) int {
	if a < b {
		return a
	}
	return b
}
