package mux

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestTunePipeGrowsAPipeAndLeavesOthers(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	TunePipe(r)
	if n, err := unix.FcntlInt(r.Fd(), unix.F_GETPIPE_SZ, 0); err != nil || n < pipeSize {
		t.Fatalf("pipe buffer after TunePipe = %d (%v), want at least %d", n, err, pipeSize)
	}
	// Not a pipe, or no descriptor at all: nothing happens.
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	TunePipe(f)
	TunePipe(struct{}{})
}
