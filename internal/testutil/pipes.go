package testutil

import (
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
	return &StdioPipes{In: inR, Out: outW, ToIn: inW, FromOut: outR}
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
