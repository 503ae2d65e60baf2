package mux

import (
	"os"
	"syscall"
	"testing"
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
	if !nonblock() {
		t.Fatal("the pipe is blocking before restore: the test proves nothing")
	}
	restore()
	restore()
	if nonblock() {
		t.Fatal("the pipe is still non-blocking after restore")
	}
	if n := openFDs(t); n != before-1 { // r's own descriptor is closed too
		t.Fatalf("%d descriptors open after restore, want %d", n, before-1)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
