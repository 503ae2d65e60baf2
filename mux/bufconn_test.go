package mux

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// writeRecorder records each Write as one unit.
type writeRecorder struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, append([]byte(nil), p...))
	return len(p), nil
}

// frame builds a WebSocket frame with an n-byte payload, masked or not.
func frame(n int, masked bool) []byte {
	b := []byte{0x82, 0}
	switch {
	case n < 126:
		b[1] = byte(n)
	case n < 1<<16:
		b[1] = 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] = 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if masked {
		b[1] |= 0x80
		b = append(b, 1, 2, 3, 4)
	}
	for i := range n {
		b = append(b, byte(i*7))
	}
	return b
}

func TestBufConnWritesWholeFrames(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, masked := range []bool{false, true} {
		rec := &writeRecorder{}
		bc := NewBufConn(rec)
		if _, err := bc.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		bc.Framing()
		var frames [][]byte
		var stream []byte
		for _, n := range []int{0, 1, 125, 126, 4096, 32780, 65535, 65536, 70000} {
			f := frame(n, masked)
			frames = append(frames, f)
			stream = append(stream, f...)
		}
		// Feed the stream in random pieces, as a 4 KiB bufio would.
		for rest := stream; len(rest) > 0; {
			k := min(len(rest), 1+rng.IntN(5000))
			if _, err := bc.Write(rest[:k]); err != nil {
				t.Fatal(err)
			}
			rest = rest[k:]
		}
		if len(rec.writes) != 1+len(frames) {
			t.Fatalf("masked=%v: %d writes, want %d (the request, then one per frame)", masked, len(rec.writes), 1+len(frames))
		}
		for i, f := range frames {
			if !bytes.Equal(rec.writes[1+i], f) {
				t.Fatalf("masked=%v: write %d is not frame %d", masked, 1+i, i)
			}
		}
	}
}

func TestBufConnHoldsAtMostMaxHold(t *testing.T) {
	rec := &writeRecorder{}
	bc := NewBufConn(rec)
	bc.Framing()
	f := frame(3*maxHold, false)
	for rest := f; len(rest) > 0; {
		k := min(len(rest), 4096)
		_, _ = bc.Write(rest[:k])
		rest = rest[k:]
	}
	var got []byte
	for _, w := range rec.writes {
		if len(w) > maxHold+4096 {
			t.Fatalf("held %d bytes", len(w))
		}
		got = append(got, w...)
	}
	if !bytes.Equal(got, f) {
		t.Fatal("bytes differ")
	}
}
