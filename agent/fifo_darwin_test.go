package agent

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// On macOS a named pipe is not handed off (kqueue never reports its
// end), while ssh's anonymous pipes still are.
func TestHandoffableFIFODarwin(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if !Handoffable(r) || !Handoffable(w) {
		t.Fatal("an anonymous pipe is not handed off")
	}
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0) // O_RDWR: opens without a peer
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if Handoffable(f) {
		t.Fatal("a named pipe is handed off, to be polled by kqueue, which never reports its end")
	}
}
