package mux

import (
	"io"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestRestoreBlocking: a pipe made non-blocking for Direct is blocking
// again for everyone sharing it once restore runs after the Close that
// ended a pending Read, and restore leaves no descriptor behind, however
// often it is called.
func TestRestoreBlocking(t *testing.T) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil { // blocking, as ssh's
		t.Fatal(err)
	}
	w := os.NewFile(uintptr(fds[1]), "w")
	defer w.Close()
	// Another holder of the same open file: the shell running a script.
	shared, err := syscall.Dup(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(shared)
	nonblock := func() bool {
		fl, _, e := syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(shared), syscall.F_GETFL, 0)
		if e != 0 {
			t.Fatal(e)
		}
		return fl&syscall.O_NONBLOCK != 0
	}
	before := openFDs(t)

	restore := RestoreBlocking(uintptr(fds[0]))
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	r := Direct(os.NewFile(uintptr(fds[0]), "r"))
	if _, ok := r.(*direct); !ok {
		t.Fatalf("Direct(pipe) = %T: the read below would not be a raw one", r)
	}
	readEndsOnClose(t, r, os.ErrClosed)
	// restore is for after the Close that readEndsOnClose started in
	// another goroutine has finished: r's descriptor is gone, the
	// duplicate is not.
	if n := fdsWithin(t, before, 5*time.Second); n != before {
		t.Fatalf("%d descriptors open after Close, want %d", n, before)
	}
	if !nonblock() {
		t.Fatal("the pipe is blocking before restore: the test proves nothing")
	}
	restore()
	restore()
	if nonblock() {
		t.Fatal("the pipe is still non-blocking after restore")
	}
	if n := openFDs(t); n != before-1 {
		t.Fatalf("%d descriptors open after restore, want %d: its duplicate was left open", n, before-1)
	}
}

// fdsWithin polls openFDs until it is want or d has passed, and returns
// the last count.
func fdsWithin(t *testing.T, want int, d time.Duration) int {
	t.Helper()
	var n int
	pollUntil(d, func() bool { n = openFDs(t); return n == want })
	return n
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestRestoreOnClose: closing a pipe's write end wrapped by RestoreOnClose
// ends its reader at once (the duplicate kept for the mode is closed with
// it), and a second Close is harmless.
func TestRestoreOnClose(t *testing.T) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if err := syscall.SetNonblock(fds[0], true); err != nil { // for a deadline
		t.Fatal(err)
	}
	r := os.NewFile(uintptr(fds[0]), "r")
	defer r.Close()
	_ = r.SetReadDeadline(time.Now().Add(10 * time.Second))
	before := openFDs(t)
	restore := RestoreBlocking(uintptr(fds[1]))
	if err := syscall.SetNonblock(fds[1], true); err != nil {
		t.Fatal(err)
	}
	w := RestoreOnClose(Direct(os.NewFile(uintptr(fds[1]), "w")), restore)
	if _, ok := w.(syscall.Conn); !ok {
		t.Fatal("RestoreOnClose hides the descriptor from TunePipe")
	}
	if _, err := w.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("second Close succeeded")
	}
	got, err := io.ReadAll(r) // EOF only if no write end is left
	if err != nil || string(got) != "last" {
		t.Fatalf("read %q, %v; want \"last\" then EOF", got, err)
	}
	if n := openFDs(t); n != before-1 {
		t.Fatalf("%d descriptors open after Close, want %d", n, before-1)
	}
}
