package mux

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		ln.Close() // ends the Accept
		<-acc
		t.Fatal(err)
	}
	b := <-acc
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

// pump writes src to w in writes of random sizes up to 300 KiB, then
// half-closes it, and returns everything read from r.
func pump(t *testing.T, w io.WriteCloser, r io.Reader, src []byte) []byte {
	t.Helper()
	var wg sync.WaitGroup
	var werr error
	wg.Go(func() {
		for p := src; len(p) > 0; {
			n := min(len(p), 1+int(p[0])*1200)
			if _, err := w.Write(p[:n]); err != nil {
				werr = err
				_ = w.Close() // ends the reader's ReadAll
				return
			}
			p = p[n:]
		}
		if cw, ok := w.(closeWriter); ok {
			werr = cw.CloseWrite()
		} else {
			werr = w.Close()
		}
	})
	got, err := io.ReadAll(r)
	wg.Wait()
	if err != nil || werr != nil {
		t.Fatalf("read: %v, write: %v", err, werr)
	}
	return got
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// readEndsOnClose checks that closing rw ends a Read pending on it with
// want.
func readEndsOnClose(t *testing.T, rw io.ReadWriteCloser, want error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := rw.Read(make([]byte, 10))
		errc <- err
	}()
	time.AfterFunc(20*time.Millisecond, func() { _ = rw.Close() })
	if err := <-errc; !errors.Is(err, want) {
		t.Fatalf("read across Close: %v, want %v", err, want)
	}
}

// TestDirectTCP: every byte arrives in order through raw reads and writes
// both ways, an EOF passes as a half-close, and the connection's own
// deadlines and Close still end a pending Read.
func TestDirectTCP(t *testing.T) {
	a, b := tcpPair(t)
	da, db := Direct(a), Direct(b)
	if _, ok := da.(*directHalf); !ok {
		t.Fatalf("Direct(TCP) = %T, want *directHalf", da)
	}
	src := randomBytes(8<<20 + 7)
	if got := pump(t, da, db, src); !bytes.Equal(got, src) {
		t.Fatalf("a→b: got %d bytes, not the %d sent", len(got), len(src))
	}
	if got := pump(t, db, da, src[:1<<20]); !bytes.Equal(got, src[:1<<20]) {
		t.Fatalf("b→a after a's half-close: got %d bytes", len(got))
	}

	c, d := tcpPair(t)
	dc := Direct(c)
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := dc.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	readEndsOnClose(t, dc, net.ErrClosed)
	if _, err := Direct(d).Write([]byte("x")); err != nil {
		t.Fatalf("write to a peer that closed just now: %v", err)
	}

	// A reset comes back as the connection's own Read reports it: a
	// *net.OpError (a net.Error) around the errno.
	e, f := tcpPair(t)
	_ = f.SetLinger(0)
	_ = f.Close()
	var oe *net.OpError
	if _, err := Direct(e).Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNRESET) || !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("read after a reset: %#v, want a *net.OpError for read around ECONNRESET", err)
	}
}

// TestDirectPipe: a non-blocking pipe carries every byte through raw
// calls, including writes larger than the pipe (which must wait for the
// reader), and its writer's close is the reader's EOF. A blocking
// descriptor is left alone, since a raw call on it would stall the
// thread.
func TestDirectPipe(t *testing.T) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil { // blocking, unlike os.Pipe's
		t.Fatal(err)
	}
	br, bw := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
	defer br.Close()
	defer bw.Close()
	if Direct(br) != io.ReadWriteCloser(br) {
		t.Fatal("Direct wrapped a blocking pipe")
	}
	// Non-blocking but not watched by the poller (a second *os.File for
	// a descriptor registered through the first): a raw call could not
	// wait on it.
	if err := syscall.SetNonblock(fds[1], true); err != nil {
		t.Fatal(err)
	}
	if Direct(bw) != io.ReadWriteCloser(bw) {
		t.Fatal("Direct wrapped a pipe the poller does not watch")
	}
	// Nor is anything but a pipe or a socket wrapped (a terminal is
	// shared with processes that may change its mode).
	null, err := os.OpenFile(os.DevNull, os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if Direct(null) != io.ReadWriteCloser(null) {
		t.Fatal("Direct wrapped a character device")
	}
	r, w, err := os.Pipe() // non-blocking, watched
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dr, dw := Direct(r), Direct(w)
	if _, ok := dw.(*direct); !ok {
		t.Fatalf("Direct(pipe) = %T, want *direct (a pipe cannot half-close)", dw)
	}
	src := randomBytes(4<<20 + 3)
	if got := pump(t, dw, dr, src); !bytes.Equal(got, src) {
		t.Fatalf("got %d bytes, not the %d sent", len(got), len(src))
	}

	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	readEndsOnClose(t, Direct(r2), os.ErrClosed) // the proxy's stdin
}

// TestRawWritev: writev sends its buffers in order, empty ones included,
// and reports every byte.
func TestRawWritev(t *testing.T) {
	a, b := tcpPair(t)
	raw := newRawIO(a)
	if raw == nil {
		t.Fatal("no raw I/O for a TCP connection")
	}
	parts := [][]byte{[]byte("head"), nil, bytes.Repeat([]byte{7}, 3<<20), {}, []byte("tail")}
	var want []byte
	for _, p := range parts {
		want = append(want, p...)
	}
	done := make(chan []byte, 1)
	go func() {
		got, _ := io.ReadAll(b)
		done <- got
	}()
	n, err := raw.writev(parts...)
	if err != nil || n != len(want) {
		t.Fatalf("writev = %d, %v; want %d, nil", n, err, len(want))
	}
	_ = a.CloseWrite()
	if got := <-done; !bytes.Equal(got, want) {
		t.Fatalf("peer got %d bytes, want %d in order", len(got), len(want))
	}
}

// A TCP socket whose reset a write took reads EOF afterwards (Linux tells
// a reset once); Direct reads a reset there, never the end of the data,
// while a peer that finished still reads as EOF, whichever side finished
// first.
func TestDirectReadsResetHiddenBehindEOF(t *testing.T) {
	t.Run("reset taken by a write", func(t *testing.T) {
		x, y := tcpPair(t)
		_ = x.SetLinger(0)
		_ = x.Close()
		var werr error
		if !pollUntil(time.Minute, func() bool { _, werr = y.Write([]byte{1}); return werr != nil }) {
			t.Fatal("writes never failed after the peer's reset")
		}
		if !errors.Is(werr, syscall.ECONNRESET) {
			t.Fatalf("the write took %v, want the reset", werr)
		}
		if n, err := Direct(y).Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("Read after the reset = %d, %v; want ECONNRESET", n, err)
		}
	})
	t.Run("peer finished", func(t *testing.T) {
		x, y := tcpPair(t)
		_ = x.CloseWrite()
		if n, err := Direct(y).Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("Read = %d, %v; want EOF", n, err)
		}
	})
	t.Run("both finished", func(t *testing.T) {
		x, y := tcpPair(t)
		dy := Direct(y)
		_ = dy.(closeWriter).CloseWrite()
		if _, err := io.ReadAll(x); err != nil {
			t.Fatal(err)
		}
		_ = x.Close()
		if n, err := dy.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("Read = %d, %v; want EOF", n, err)
		}
	})
}
