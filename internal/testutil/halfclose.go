package testutil

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// RandomBytes is n bytes of a fixed pseudo-random sequence chosen by
// seed: data whose every byte a drop, duplicate or swap would change.
func RandomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// FirstDiff is the offset of the first byte where got and want differ,
// a difference in length included, or -1 when they are equal.
func FirstDiff(got, want []byte) int {
	if bytes.Equal(got, want) {
		return -1
	}
	n := min(len(got), len(want))
	for i := range n {
		if got[i] != want[i] {
			return i
		}
	}
	return n
}

// Received is what a target read from its client, to the client's end
// (Err nil) or to the error its reading ended with.
type Received struct {
	Data []byte
	Err  error
}

// ReplyAfterEOF is a target that reads each connection to its client's
// EOF, reports what it read, and only then sends reply and closes: its
// reply flows on a connection its client has already half-closed. The
// channel holds eight reports.
func ReplyAfterEOF(t testing.TB, reply []byte) (*Server, <-chan Received) {
	t.Helper()
	got := make(chan Received, 8)
	s := Serve(t, func(c net.Conn) {
		b, err := io.ReadAll(c)
		got <- Received{b, err}
		_, _ = c.Write(reply)
	})
	return s, got
}

// FirstThenRead is a target that sends first on each connection and
// half-closes, then reads its client to the client's EOF and reports
// what it read. The channel holds eight reports.
func FirstThenRead(t testing.TB, first []byte) (*Server, <-chan Received) {
	t.Helper()
	got := make(chan Received, 8)
	s := Serve(t, func(c net.Conn) {
		_, _ = c.Write(first)
		_ = c.(*net.TCPConn).CloseWrite()
		b, err := io.ReadAll(c)
		got <- Received{b, err}
	})
	return s, got
}

// AwaitReceived fails the test unless the next report on ch is want, read
// to a clean end, within 20 s.
func AwaitReceived(t testing.TB, ch <-chan Received, want []byte) {
	t.Helper()
	select {
	case r := <-ch:
		if r.Err != nil {
			t.Fatalf("the target read %d bytes, then %v; want %d and EOF", len(r.Data), r.Err, len(want))
		}
		if i := FirstDiff(r.Data, want); i >= 0 {
			t.Fatalf("the target read %d bytes, want %d; first difference at byte %d", len(r.Data), len(want), i)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the target did not reach its client's EOF within 20s")
	}
}

// WriteInPieces writes data to w in pieces of growing sizes (1 byte,
// 2, 3, …), so that faults land inside and between frames, then calls
// closeW if it is not nil; the outcome arrives on the channel returned.
func WriteInPieces(w io.Writer, data []byte, closeW func() error) <-chan error {
	wrote := make(chan error, 1)
	go func() {
		for off, n := 0, 1; off < len(data); off, n = off+n, n%7919+1 {
			n = min(n, len(data)-off)
			if _, err := w.Write(data[off : off+n]); err != nil {
				wrote <- err
				return
			}
		}
		if closeW != nil {
			wrote <- closeW()
			return
		}
		wrote <- nil
	}()
	return wrote
}

// ReadAllWant reads r to its end and fails the test unless that is want,
// then a clean end; what names the bytes for the message.
func ReadAllWant(t testing.TB, r io.Reader, want []byte, what string) {
	t.Helper()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %d of the %d bytes of %s, then %v", len(got), len(want), what, err)
	}
	if i := FirstDiff(got, want); i >= 0 {
		t.Fatalf("read %d bytes of %s, want %d; first difference at byte %d", len(got), what, len(want), i)
	}
}
