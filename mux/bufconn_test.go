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

func (w *writeRecorder) Close() error { return nil }

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

// TestBufConnWritevKeepsBytes runs the writev path (a real TCP socket):
// pieces the size a 4 KiB bufio and a direct large write produce, and
// random ones, must arrive as the same byte stream.
func TestBufConnWritevKeepsBytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(c)
		got <- b.Bytes()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	bc := NewBufConn(c)
	if !bc.vec {
		t.Fatal("a TCP connection should take the writev path")
	}
	bc.Framing()
	rng := rand.New(rand.NewPCG(3, 4))
	var stream []byte
	for i, n := range []int{70000, 1, 262144, 16 << 10, 65536, 3 * maxHold, 125, 200000} {
		f := frame(n, i%2 == 1)
		stream = append(stream, f...)
		// As coder/websocket writes: up to 4 KiB through its buffer,
		// then the rest at once, or random pieces for every other frame.
		for rest := f; len(rest) > 0; {
			k := min(len(rest), 4096)
			if i%3 == 2 {
				k = min(len(rest), 1+rng.IntN(100<<10))
			} else if len(rest) < len(f) {
				k = len(rest)
			}
			if _, err := bc.Write(rest[:k]); err != nil {
				t.Fatal(err)
			}
			rest = rest[k:]
		}
	}
	_ = c.(*net.TCPConn).CloseWrite()
	if b := <-got; !bytes.Equal(b, stream) {
		t.Fatalf("received %d bytes, sent %d, or they differ", len(b), len(stream))
	}
	c.Close()
}
