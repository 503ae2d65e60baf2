package testutil

import (
	"fmt"
	"io"
	"os"
	"testing"
	"time"
)

// StdioPipes are a ProxyCommand's stdin and stdout as ssh makes them: two
// pipes. In and Out are the proxy's ends, ToIn and FromOut ssh's, which
// the test holds. The test's cleanup closes all four.
type StdioPipes struct {
	In, Out, ToIn, FromOut *os.File
	// links are the two pipes as /proc/self/fd names them (Held).
	links [2]string
}

// NewStdioPipes makes the two pipes.
func NewStdioPipes(t testing.TB) *StdioPipes {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		_ = inR.Close()
		_ = inW.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, f := range []*os.File{inR, inW, outR, outW} {
			_ = f.Close() // the proxy's ends may be closed already
		}
	})
	p := &StdioPipes{In: inR, Out: outW, ToIn: inW, FromOut: outR}
	for i, f := range []*os.File{inR, outW} {
		// Through SyscallConn: Fd would make the end blocking, which
		// tests of how the agent leaves a descriptor's mode look at.
		if raw, err := f.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) { p.links[i], _ = os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd)) })
		}
	}
	return p
}

// Held counts the descriptors this process holds on either pipe, the
// copies of whoever they were handed to included: none once ssh's ends
// are closed and the agent has let go of the stream. It counts them as
// they are, without collecting garbage first (OpenFDsAsIs), and skips
// the test where /proc/self/fd is missing.
func (p *StdioPipes) Held(t testing.TB) int {
	t.Helper()
	return countFDs(t, func(link string) bool { return link != "" && (link == p.links[0] || link == p.links[1]) })
}

// EchoOnce writes msg as ssh would and reads it back from an echo target
// at the other end.
func (p *StdioPipes) EchoOnce(t testing.TB, msg string) {
	t.Helper()
	if _, err := p.ToIn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = p.FromOut.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(p.FromOut, got); err != nil || string(got) != msg {
		t.Fatalf("echo of %q: %q, %v", msg, got, err)
	}
}
