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
