package mux_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// Like TestSpliceFailureAfterCleanEndIsNoReset, but y keeps talking (a
// download still flowing when the other side fails): b then holds unread
// bytes when Splice closes it, and a close with unread bytes is a reset
// on Linux, which throws away the tail of the upload still queued to y.
func TestSpliceFailureAfterCleanEndWhilePeerTalks(t *testing.T) {
	errBoom := errors.New("boom")
	s := startSplice(t, nil)
	data := randBytes(t, 8<<20)
	type result struct {
		got []byte
		err error
	}
	res := make(chan result, 1)
	go func() { // y talks without pause, and reads slowly
		buf := make([]byte, 64<<10)
		for {
			if _, err := s.y.Write(buf); err != nil {
				return
			}
		}
	}()
	go func() {
		var got bytes.Buffer
		buf := make([]byte, 64<<10)
		for {
			time.Sleep(5 * time.Millisecond)
			n, err := s.y.Read(buf)
			got.Write(buf[:n])
			if err != nil {
				res <- result{got.Bytes(), err}
				return
			}
		}
	}()
	go func() { _, _ = io.Copy(io.Discard, s.x) }()
	if _, err := s.x.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := s.x.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for s.b.closeWrites.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Splice did not pass the EOF on")
		}
		time.Sleep(time.Millisecond)
	}
	s.a.writeErr.Store(&errBoom)
	r := <-res
	if !errors.Is(r.err, io.EOF) || !bytes.Equal(r.got, data) {
		t.Fatalf("y read %d of %d bytes, then %v; want all of them and a clean end", len(r.got), len(data), r.err)
	}
	_ = s.wait(t)
}
