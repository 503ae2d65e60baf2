package agent

import (
	"os"
	"testing"

	"github.com/sandmux/sandmux/internal/testutil"
	"golang.org/x/sys/unix"
)

// The agent enlarges handed-over pipes as a copying proxy would, so a
// bulk transfer moves a frame per syscall through them.
func TestHandoffTunesPipes(t *testing.T) {
	r := newHandoffRig(t)
	p := testutil.NewStdioPipes(t)
	size := func(f *os.File) int {
		n, err := unix.FcntlInt(f.Fd(), unix.F_GETPIPE_SZ, 0)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if in, out := size(p.In), size(p.Out); in >= 256<<10 || out >= 256<<10 {
		t.Fatalf("pipes already hold %d and %d bytes: the test proves nothing", in, out)
	}
	h := r.open(t, p)
	p.EchoOnce(t, "hello") // the agent has set the pipes up by now
	if in, out := size(p.ToIn), size(p.FromOut); in < 256<<10 || out < 256<<10 {
		t.Fatalf("pipes hold %d and %d bytes after the hand-off, want at least %d", in, out, 256<<10)
	}
	_ = p.ToIn.Close()
	waitDone(t, h)
}

// The agent polls the proxy's stdin and stdout in non-blocking mode, and
// puts them back in blocking mode before it reports the stream's end: the
// mode belongs to the pipes, which a script's next command may read.
func TestHandoffRestoresBlocking(t *testing.T) {
	r := newHandoffRig(t)
	p, shared := blockingStdioPipes(t)
	h := r.open(t, p)
	p.EchoOnce(t, "hello")
	if !isNonblock(t, shared[0]) || !isNonblock(t, shared[1]) {
		t.Fatal("the agent left stdin and stdout blocking: the test proves nothing")
	}
	_ = p.ToIn.Close()
	waitDone(t, h)
	if isNonblock(t, shared[0]) || isNonblock(t, shared[1]) {
		t.Fatalf("after the verdict: stdin non-blocking %v, stdout %v; want both blocking",
			isNonblock(t, shared[0]), isNonblock(t, shared[1]))
	}
}

// blockingStdioPipes are testutil.StdioPipes whose proxy ends are
// blocking, as ssh makes them (os.Pipe's are not), and a second
// descriptor of each of those ends, as the shell that started the proxy
// keeps.
func blockingStdioPipes(t *testing.T) (*testutil.StdioPipes, [2]int) {
	t.Helper()
	var in, out [2]int
	for _, fds := range []*[2]int{&in, &out} {
		if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
	}
	var shared [2]int
	for i, fd := range []int{in[0], out[1]} {
		d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		shared[i] = d
	}
	// ssh's ends are polled, for the test's deadlines; each is an open
	// file of its own, whose mode is not the proxy's.
	for _, fd := range []int{in[1], out[0]} {
		if err := unix.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
	}
	p := &testutil.StdioPipes{
		In: os.NewFile(uintptr(in[0]), "in"), ToIn: os.NewFile(uintptr(in[1]), "to-in"),
		Out: os.NewFile(uintptr(out[1]), "out"), FromOut: os.NewFile(uintptr(out[0]), "from-out"),
	}
	t.Cleanup(func() {
		for _, f := range []*os.File{p.In, p.ToIn, p.Out, p.FromOut} {
			_ = f.Close() // some are handed off, and closed, already
		}
		_ = unix.Close(shared[0])
		_ = unix.Close(shared[1])
	})
	return p, shared
}

// Descriptors that were non-blocking when handed over (os.Pipe's are)
// are left so: the agent puts back only what it changed.
func TestHandoffLeavesNonblockingAlone(t *testing.T) {
	r := newHandoffRig(t)
	p := testutil.NewStdioPipes(t)
	var shared [2]int
	for i, f := range []*os.File{p.In, p.Out} {
		rc, err := f.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var derr error
		if err := rc.Control(func(fd uintptr) { shared[i], derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil || derr != nil {
			t.Fatal(err, derr)
		}
		defer unix.Close(shared[i])
	}
	if !isNonblock(t, shared[0]) || !isNonblock(t, shared[1]) {
		t.Fatal("os.Pipe's ends are blocking: the test proves nothing")
	}
	h := r.open(t, p)
	p.EchoOnce(t, "hello")
	_ = p.ToIn.Close()
	waitDone(t, h)
	if !isNonblock(t, shared[0]) || !isNonblock(t, shared[1]) {
		t.Fatalf("after the verdict: stdin non-blocking %v, stdout %v; want both as they were",
			isNonblock(t, shared[0]), isNonblock(t, shared[1]))
	}
}
