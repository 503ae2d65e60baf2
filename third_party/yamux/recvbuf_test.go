package yamux

import (
	"bytes"
	"io"
	"math/rand"
	"testing"
	"time"
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

// take lends whole chunks in order, each of the smallest class that holds
// its frame, and mixes with Read without losing or repeating a byte.
func TestRecvQueueTake(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	var q recvQueue
	var want, got []byte
	for round := 0; round < 300; round++ {
		switch rng.Intn(3) {
		case 0:
			n := rng.Intn(maxChunk + chunkSize) // every class, and frames of two chunks
			b := make([]byte, n)
			rng.Read(b)
			want = append(want, b...)
			if n < chunkSize/2 {
				q.appendSmall(b)
				break
			}
			k := len(q.chunks)
			if err := q.readChunks(bytes.NewReader(b), n); err != nil {
				t.Fatal(err)
			}
			for _, c := range q.chunks[k:] {
				class := chunkSize
				for class < len(*c) {
					class *= 2
				}
				if cap(*c) != class || cap(*c) > maxChunk {
					t.Fatalf("round %d: %d bytes read into a chunk of %d, want %d", round, len(*c), cap(*c), class)
				}
			}
		case 1:
			if q.Len() == 0 {
				break
			}
			before := q.Len()
			c, b := q.take()
			got = append(got, b...)
			if q.Len() != before-len(b) || len(b) == 0 {
				t.Fatalf("round %d: take lent %d of %d unread, %d left", round, len(b), before, q.Len())
			}
			releaseChunk(c)
		default:
			p := make([]byte, rng.Intn(2*chunkSize))
			got = append(got, p[:q.Read(p)]...)
		}
	}
	for q.Len() > 0 {
		c, b := q.take()
		got = append(got, b...)
		releaseChunk(c)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want the %d appended, in order", len(got), len(want))
	}
}

// A stream read with ReadChunk delivers every byte in order, grants its
// window back (the sender writes far more than one window), and ends with
// io.EOF and nothing lent.
func TestStreamReadChunk(t *testing.T) {
	client, server := testClientServer(t)
	want := make([]byte, 8<<20)
	rand.New(rand.NewSource(3)).Read(want)
	errs := make(chan error, 1)
	go func() {
		st, err := client.Open()
		if err != nil {
			errs <- err
			return
		}
		rng := rand.New(rand.NewSource(4))
		for b := want; len(b) > 0; {
			n := minInt(len(b), 1+rng.Intn(3*maxChunk/2))
			if _, err := st.Write(b[:n]); err != nil {
				errs <- err
				return
			}
			b = b[n:]
		}
		errs <- st.Close()
	}()
	st, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var got []byte
	for {
		b, token, err := st.ReadChunk()
		got = append(got, b...)
		st.ReleaseChunk(token)
		if err == io.EOF {
			if len(b) != 0 || token != nil {
				t.Fatalf("EOF came with %d bytes lent", len(b))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			t.Fatal("ReadChunk returned nothing and no error")
		}
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want the %d written, in order", len(got), len(want))
	}
}

// ReadChunk honours the read deadline as Read does.
func TestStreamReadChunkDeadline(t *testing.T) {
	client, server := testClientServer(t)
	cs, err := client.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := cs.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	st, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if b, token, err := st.ReadChunk(); err != nil || string(b) != "x" {
		t.Fatalf("ReadChunk = %q, %v; want \"x\"", b, err)
	} else {
		st.ReleaseChunk(token)
	}
	_ = st.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, _, err := st.ReadChunk(); err != ErrTimeout {
		t.Fatalf("ReadChunk past the deadline: %v, want ErrTimeout", err)
	}
}
