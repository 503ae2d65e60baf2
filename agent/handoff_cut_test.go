//go:build !windows

package agent

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
)

// cutStream is a stream whose session is cut: once cut is closed a Write
// fails at once, and a Read fails only once readCut is closed, so a test
// chooses which direction of the splice sees the cut first.
type cutStream struct {
	net.Conn // unused: only Read, Write and Close are called
	cut      chan struct{}
	readCut  chan struct{}
	once     sync.Once
	closed   chan struct{}
}

var errTestCut = fmt.Errorf("test: %w", mux.ErrSessionEnded)

func (s *cutStream) Read([]byte) (int, error) {
	select {
	case <-s.readCut:
		return 0, errTestCut
	case <-s.closed:
		return 0, net.ErrClosed
	}
}

func (s *cutStream) Write(p []byte) (int, error) {
	select {
	case <-s.cut:
		return 0, errTestCut
	case <-s.closed:
		return 0, net.ErrClosed
	default:
		return len(p), nil
	}
}

func (s *cutStream) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

// A cut that ssh's side of the splice meets first (ssh was sending, as an
// scp upload does) keeps ssh's pipes open until the proxy has taken the
// verdict, as one met by the stream's reader does: the reader, which
// meets the cut a moment later, closed the pipes at once, so ssh exited
// before a proxy slow to be scheduled had printed its line.
func TestHandoffCutMetByWriterKeepsPipes(t *testing.T) {
	proxy, agentEnd, err := unixPair(t)
	if err != nil {
		t.Fatal(err)
	}
	p := testutil.NewStdioPipes(t)
	st := &cutStream{cut: make(chan struct{}), readCut: make(chan struct{}), closed: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		serveHandoff(agentEnd, st, func(err error) error { return err }, "")
	}()
	defer wg.Wait()
	defer proxy.Close()
	if err := sendFiles(proxy, p.In, p.Out); err != nil {
		t.Fatal(err)
	}
	_ = p.In.Close()
	_ = p.Out.Close()
	close(st.cut)
	// ssh sends; the agent's write into the stream meets the cut.
	if _, err := p.ToIn.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	_ = proxy.SetReadDeadline(time.Now().Add(10 * time.Second))
	var verdict reply
	if err := readMessage(proxy, &verdict); err != nil || verdict.OK {
		t.Fatalf("verdict %+v, %v: want the cut's reason", verdict, err)
	}
	close(st.readCut) // the stream's reader meets it too
	_ = p.FromOut.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := io.ReadAll(p.FromOut); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("stdout before the proxy took its verdict: %v, want it still open", err)
	}
	_ = proxy.Close()
	_ = p.FromOut.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(p.FromOut); err != nil {
		t.Fatalf("stdout after the proxy took its verdict: %v, want EOF", err)
	}
}
