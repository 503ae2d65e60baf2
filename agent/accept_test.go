package agent

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
)

// fakeAcceptor returns errs in turn, then net.ErrClosed.
type fakeAcceptor struct {
	errs  []error
	calls int
}

func (f *fakeAcceptor) AcceptUnix() (*net.UnixConn, error) {
	f.calls++
	if len(f.errs) == 0 {
		return nil, net.ErrClosed
	}
	err := f.errs[0]
	f.errs = f.errs[1:]
	return nil, err
}

// Running out of descriptors must not end the agent, and every session
// with it: accept waits and tries again; only a closed listener ends it.
func TestAcceptWaitsOutTransientErrors(t *testing.T) {
	a, err := New(DefaultConfig(shortDir(t)))
	if err != nil {
		t.Fatal(err)
	}
	ln := &fakeAcceptor{errs: []error{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED}}
	if _, err := a.accept(context.Background(), ln); !errors.Is(err, net.ErrClosed) || ln.calls != 4 {
		t.Fatalf("accept: %v after %d calls, want net.ErrClosed after 4", err, ln.calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ln = &fakeAcceptor{errs: []error{syscall.EMFILE, syscall.EMFILE}}
	if _, err := a.accept(ctx, ln); err == nil || ln.calls != 1 {
		t.Fatalf("accept with its context ended: %v after %d calls, want the error at once", err, ln.calls)
	}
}
