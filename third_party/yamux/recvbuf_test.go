package yamux

import (
	"bytes"
	"math/rand"
	"testing"
)

// The queue returns exactly the bytes appended, in order, for any mix of
// small and chunk-sized appends and read sizes, and holds at most about
// twice the unread bytes.
func TestRecvQueueOrderAndBound(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var q recvQueue
	var want, got []byte
	for round := 0; round < 500; round++ {
		if rng.Intn(2) == 0 {
			n := rng.Intn(3 * chunkSize / 2)
			b := make([]byte, n)
			rng.Read(b)
			want = append(want, b...)
			if n >= chunkSize/2 {
				if err := q.readChunks(bytes.NewReader(b), n); err != nil {
					t.Fatal(err)
				}
			} else {
				q.appendSmall(b)
			}
		} else {
			p := make([]byte, rng.Intn(2*chunkSize))
			got = append(got, p[:q.Read(p)]...)
		}
		held := 0
		for _, c := range q.chunks {
			held += cap(*c)
		}
		if q.n > 0 && held > 2*q.n+2*chunkSize {
			t.Fatalf("round %d: %d bytes held for %d unread", round, held, q.n)
		}
	}
	p := make([]byte, q.Len())
	got = append(got, p[:q.Read(p)]...)
	if !bytes.Equal(got, want) || q.Len() != 0 {
		t.Fatalf("read %d bytes, want the %d appended, in order", len(got), len(want))
	}
}

// A frame cut short keeps the bytes that did arrive.
func TestReadChunksKeepsPartial(t *testing.T) {
	var q recvQueue
	err := q.readChunks(bytes.NewReader(bytes.Repeat([]byte("a"), chunkSize+3)), 2*chunkSize)
	if err == nil || q.Len() != chunkSize+3 {
		t.Fatalf("readChunks: %d bytes queued, %v: want the %d sent and an error", q.Len(), err, chunkSize+3)
	}
}
