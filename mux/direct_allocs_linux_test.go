package mux

import (
	"io"
	"os"
	"testing"
)

// TestDirectAllocatesNothing: a read and a write through Direct, and a
// writev of two buffers, allocate nothing. A closure per system call had
// been the largest share of what an upload allocated in the tunnel's
// processes, and every garbage collection it brought on also emptied the
// message pools.
func TestDirectAllocatesNothing(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	r, w := Direct(pr), Direct(pw)
	raw := w.(*direct).raw
	if r == io.ReadWriteCloser(pr) || raw == nil {
		t.Fatal("Direct did not wrap os.Pipe's descriptors")
	}
	msg, head, got := []byte("payload"), []byte("hd"), make([]byte, 64)
	bufs := [][]byte{head, msg}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := w.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.writev(bufs...); err != nil {
			t.Fatal(err)
		}
		if n, err := r.Read(got); err != nil || n != 2*len(msg)+len(head) {
			t.Fatalf("read %d bytes, %v; want %d", n, err, 2*len(msg)+len(head))
		}
	})
	if allocs != 0 {
		t.Errorf("a write, a writev and a read allocated %.0f times, want none", allocs)
	}
}
