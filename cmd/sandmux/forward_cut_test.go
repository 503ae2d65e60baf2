package main

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
)

// fixedOpener hands out one given stream.
type fixedOpener struct{ c net.Conn }

func (o fixedOpener) open(context.Context, string) (net.Conn, error) { return o.c, nil }
func (o fixedOpener) close()                                         {}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); ch <- c }()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-ch
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

// forwardOne runs forwarder.handle for one local connection carried on
// stream (here a TCP connection standing in for the tunnel) and returns
// the local client's end and a wait for handle.
func forwardOne(t *testing.T, ctx context.Context, stream net.Conn, errw io.Writer) (*net.TCPConn, func()) {
	t.Helper()
	local, accepted := tcpPair(t)
	f := &forwarder{opener: fixedOpener{stream}, host: "box", errw: errw}
	var wg sync.WaitGroup
	wg.Go(func() { f.handle(ctx, accepted, forwardSpec{Listen: "l", Target: "t"}) })
	return local, wg.Wait
}

// A clean end is never a reset, with half-close carried both ways, and
// says nothing.
func TestForwardCleanEndIsNoReset(t *testing.T) {
	stream, remote := tcpPair(t)
	var errw testutil.Buffer
	local, wait := forwardOne(t, context.Background(), stream, &errw)
	const size = 16 << 20
	go func() {
		_, _ = remote.Write(make([]byte, size))
		_ = remote.CloseWrite()
		_, _ = io.Copy(io.Discard, remote)
		_ = remote.Close()
	}()
	_ = local.CloseWrite()
	if n, err := io.Copy(io.Discard, local); n != size || err != nil {
		t.Fatalf("local client read %d bytes, then %v; want %d and a clean end", n, err, size)
	}
	wait()
	if s := errw.String(); s != "" {
		t.Fatalf("printed %q for a clean end", s)
	}
}

// A stream cut at its far end resets the local connection, and a
// forward stopped mid-transfer does the same.
func TestForwardCutResetsLocal(t *testing.T) {
	for _, stop := range []bool{false, true} {
		stream, remote := tcpPair(t)
		ctx, cancel := context.WithCancel(context.Background())
		local, wait := forwardOne(t, ctx, stream, io.Discard)
		go func() {
			buf := make([]byte, 64<<10)
			for {
				if _, err := remote.Write(buf); err != nil {
					return
				}
			}
		}()
		if _, err := io.ReadFull(local, make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
		if stop {
			cancel()
		} else {
			_ = remote.SetLinger(0)
			_ = remote.Close()
		}
		n, err := io.Copy(io.Discard, local)
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("stopped %v: the local client read %d more bytes, then %v; want a reset", stop, n, err)
		}
		cancel()
		wait()
	}
}

// A local client that resets its connection mid-upload, or a forward
// stopped then, resets the stream, so that the target cannot take the part
// it got for the whole upload; the local reset is not reported. (The far
// end only reads: a socket closed with unread input resets anyway.)
func TestForwardCutUploadResetsStream(t *testing.T) {
	for _, stop := range []bool{false, true} {
		stream, remote := tcpPair(t)
		var errw testutil.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		local, wait := forwardOne(t, ctx, stream, &errw)
		const part = 64 << 10
		if _, err := local.Write(make([]byte, part)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(remote, make([]byte, part)); err != nil {
			t.Fatal(err)
		}
		if stop {
			cancel()
		} else {
			_ = local.SetLinger(0)
			_ = local.Close()
		}
		n, err := io.Copy(io.Discard, remote)
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("stopped %v: the stream's far end read %d more bytes, then %v; want a reset", stop, n, err)
		}
		cancel()
		wait()
		if s := errw.String(); s != "" {
			t.Errorf("stopped %v: printed %q", stop, s)
		}
	}
}

// The watcher keeps what the splice looks for: half-close and lent chunks.
func TestWatchCutKeepsStreamShape(t *testing.T) {
	var cut, ended atomic.Bool
	if _, ok := watchCut((*mux.Stream)(nil), &cut, &ended).(mux.ChunkReader); !ok {
		t.Error("a mux.Stream's watcher lends no chunks: the splice would copy them")
	}
	if _, ok := watchCut((*net.TCPConn)(nil), &cut, &ended).(interface{ CloseWrite() error }); !ok {
		t.Error("a TCP connection's watcher cannot half-close")
	}
	a, _ := net.Pipe()
	defer a.Close()
	if _, ok := watchCut(a, &cut, &ended).(interface{ CloseWrite() error }); ok {
		t.Error("the watcher of a connection that cannot half-close claims it can")
	}
}

// A forward stopped mid-upload resets the stream also when the download
// has already come to its end: the target must not read a clean end of a
// partial upload.
func TestForwardStopMidUploadResetsStream(t *testing.T) {
	stream, remote := tcpPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	local, wait := forwardOne(t, ctx, stream, io.Discard)
	_, _ = remote.Write([]byte("hi"))
	_ = remote.CloseWrite()
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := local.Write(buf); err != nil {
				return
			}
		}
	}()
	if b, err := io.ReadAll(local); err != nil || string(b) != "hi" {
		t.Fatalf("%q %v", b, err)
	}
	if _, err := io.ReadFull(remote, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	cancel()
	n, err := io.Copy(io.Discard, remote)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("stopped mid-upload: the target read %d more bytes, then %v; want a reset", n, err)
	}
	wait()
}
