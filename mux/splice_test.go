package mux_test

import (
	"bytes"
	cryptorand "crypto/rand"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
)

// waitTimeout bounds every wait in these tests; nothing should come near it.
const waitTimeout = time.Minute

// tcpPair returns both ends of one loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	type result struct {
		c   net.Conn
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		accepted <- result{c, err}
	}()
	dialed, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	r := <-accepted
	if r.err != nil {
		t.Fatalf("accept: %v", r.err)
	}
	t.Cleanup(func() { _ = dialed.Close(); _ = r.c.Close() })
	return dialed.(*net.TCPConn), r.c.(*net.TCPConn)
}

// faultConn wraps a TCP conn, counts Close calls, and fails a Read, Write
// or CloseWrite with an injected error once armed.
type faultConn struct {
	*net.TCPConn
	readErr, writeErr, closeWriteErr atomic.Pointer[error]
	closes, closeWrites              atomic.Int32
}

func (c *faultConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if e := c.readErr.Load(); e != nil {
		return 0, *e
	}
	return n, err
}

func (c *faultConn) Write(p []byte) (int, error) {
	if e := c.writeErr.Load(); e != nil {
		return 0, *e
	}
	return c.TCPConn.Write(p)
}

func (c *faultConn) CloseWrite() error {
	if e := c.closeWriteErr.Load(); e != nil {
		return *e
	}
	defer c.closeWrites.Add(1)
	return c.TCPConn.CloseWrite()
}

func (c *faultConn) Close() error {
	c.closes.Add(1)
	return c.TCPConn.Close()
}

// fullCloser hides CloseWrite, like a WebSocket that cannot half-close.
type fullCloser struct{ c *faultConn }

func (f fullCloser) Read(p []byte) (int, error)  { return f.c.Read(p) }
func (f fullCloser) Write(p []byte) (int, error) { return f.c.Write(p) }
func (f fullCloser) Close() error                { return f.c.Close() }

// splicer is x <-> [a Splice b] <-> y: the test drives x and y.
type splicer struct {
	x, y *net.TCPConn
	a, b *faultConn
	done chan error
}

func startSplice(t *testing.T, wrapB func(*faultConn) io.ReadWriteCloser) *splicer {
	t.Helper()
	x, a := tcpPair(t)
	b, y := tcpPair(t)
	s := &splicer{x: x, y: y, a: &faultConn{TCPConn: a}, b: &faultConn{TCPConn: b}, done: make(chan error, 1)}
	var bb io.ReadWriteCloser = s.b
	if wrapB != nil {
		bb = wrapB(s.b)
	}
	go func() { s.done <- mux.Splice(s.a, bb) }()
	return s
}

// wait returns Splice's result and checks that it closed both sides.
func (s *splicer) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		if s.a.closes.Load() == 0 || s.b.closes.Load() == 0 {
			t.Errorf("Splice returned without closing both sides: a closed %d times, b %d", s.a.closes.Load(), s.b.closes.Load())
		}
		return err
	case <-time.After(waitTimeout):
		t.Fatal("Splice did not return")
		return nil
	}
}

// send writes p on w and checks that r receives exactly p.
func send(t *testing.T, w io.Writer, r io.Reader, p []byte) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { _, err := w.Write(p); errc <- err }()
	got := make([]byte, len(p))
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatalf("read %d bytes: %v", len(p), err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, p) {
		t.Fatal("bytes arrived changed")
	}
}

func expectEOF(t *testing.T, r io.Reader) {
	t.Helper()
	n, err := r.Read(make([]byte, 1))
	if n != 0 || err != io.EOF {
		t.Fatalf("Read = %d, %v; want 0, EOF", n, err)
	}
}

// randBytes returns n pseudo-random bytes, cheaply: the big tests need
// tens of MiB and no cryptographic quality.
func randBytes(t *testing.T, n int) []byte {
	t.Helper()
	var seed [32]byte
	_, _ = cryptorand.Read(seed[:])
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

// TestSpliceHalfClose: both directions carry data; EOF in one direction
// half-closes the far side while the other direction keeps flowing.
func TestSpliceHalfClose(t *testing.T) {
	tests := []struct {
		name string
		// first closes its write half first; second keeps talking.
		first, second func(*splicer) *net.TCPConn
	}{
		{"x closes first", func(s *splicer) *net.TCPConn { return s.x }, func(s *splicer) *net.TCPConn { return s.y }},
		{"y closes first", func(s *splicer) *net.TCPConn { return s.y }, func(s *splicer) *net.TCPConn { return s.x }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSplice(t, nil)
			first, second := tt.first(s), tt.second(s)
			send(t, s.x, s.y, randBytes(t, 256<<10))
			send(t, s.y, s.x, randBytes(t, 256<<10))

			if err := first.CloseWrite(); err != nil {
				t.Fatalf("CloseWrite: %v", err)
			}
			expectEOF(t, second)
			// The opposite direction still works, for more than a buffer.
			send(t, second, first, randBytes(t, 1<<20))

			if err := second.CloseWrite(); err != nil {
				t.Fatalf("CloseWrite: %v", err)
			}
			expectEOF(t, first)
			if err := s.wait(t); err != nil {
				t.Fatalf("Splice = %v, want nil after both half-closes", err)
			}
			if _, err := s.a.TCPConn.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("a after Splice: Read error %v, want net.ErrClosed", err)
			}
			if _, err := s.b.TCPConn.Write([]byte{1}); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("b after Splice: Write error %v, want net.ErrClosed", err)
			}
		})
	}
}

// TestSpliceErrors: the first real error ends both sides at once and is
// what Splice returns; Splice always closes both, and the side that did
// not fail is reset, so that its far end cannot take a cut for the end.
func TestSpliceErrors(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		wrapB   func(*faultConn) io.ReadWriteCloser
		arm     func(*splicer)
		trigger func(*testing.T, *splicer)
		want    error
		reset   string // the far end that must read a reset: "x", "y" or none
		clean   string // the far end that must read a clean end
	}{
		{
			name:    "read error on a",
			arm:     func(s *splicer) { s.a.readErr.Store(&errBoom) },
			trigger: func(t *testing.T, s *splicer) { _, _ = s.x.Write([]byte("x")) },
			want:    errBoom,
			reset:   "y",
		},
		{
			name:    "read error on b",
			arm:     func(s *splicer) { s.b.readErr.Store(&errBoom) },
			trigger: func(t *testing.T, s *splicer) { _, _ = s.y.Write([]byte("y")) },
			want:    errBoom,
			reset:   "x",
		},
		{
			// A write that fails ends only the direction into b until
			// the other direction ends: here by y's reset, which resets
			// x's side.
			name: "write error on b, then b reset",
			arm:  func(s *splicer) { s.b.writeErr.Store(&errBoom) },
			trigger: func(t *testing.T, s *splicer) {
				_, _ = s.x.Write([]byte("x"))
				_ = s.y.SetLinger(0)
				_ = s.y.Close()
			},
			want:  syscall.ECONNRESET,
			reset: "x",
		},
		{
			// ... and here by its clean end, which x's side gets as
			// such: all of y's data, then its end.
			name: "write error on b, then b's end",
			arm:  func(s *splicer) { s.b.writeErr.Store(&errBoom) },
			trigger: func(t *testing.T, s *splicer) {
				_, _ = s.x.Write([]byte("x"))
				_ = s.y.CloseWrite()
			},
			want:  errBoom,
			clean: "x",
		},
		{
			name:    "close-write error on b",
			arm:     func(s *splicer) { s.b.closeWriteErr.Store(&errBoom) },
			trigger: func(t *testing.T, s *splicer) { _ = s.x.CloseWrite() },
			want:    errBoom,
			reset:   "x",
		},
		{
			// A side that cannot half-close is closed to pass EOF on,
			// which ends both directions without an error.
			name:    "EOF into a side without CloseWrite",
			wrapB:   func(c *faultConn) io.ReadWriteCloser { return fullCloser{c} },
			arm:     func(*splicer) {},
			trigger: func(t *testing.T, s *splicer) { _ = s.x.CloseWrite() },
			want:    nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSplice(t, tt.wrapB)
			send(t, s.x, s.y, []byte("before the fault"))
			send(t, s.y, s.x, []byte("both ways"))
			tt.arm(s)
			tt.trigger(t, s)
			err := s.wait(t)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("Splice = %v, want nil", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("Splice = %v, want %v", err, tt.want)
			}
			// Both far ends see their connection end (a reset is fine: a
			// side closed with unread input sends one), and the far end
			// of the side that did not fail sees a reset.
			for name, c := range map[string]*net.TCPConn{"x": s.x, "y": s.y} {
				_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
				_, err := io.Copy(io.Discard, c)
				switch {
				case name == tt.reset && !errors.Is(err, syscall.ECONNRESET):
					t.Fatalf("%s: read to the end with %v; want a reset", name, err)
				case name == tt.clean && err != nil:
					t.Fatalf("%s: read to the end with %v; want a clean end", name, err)
				case err != nil && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, net.ErrClosed): // (closed by the test)
					t.Fatalf("%s: reading to the end: %v", name, err)
				}
			}
		})
	}
}

// TestSpliceFailureAfterCleanEndIsNoReset: a side whose incoming data
// already came to its end (Splice closed its write half) is closed, not
// reset, when the other side fails afterwards (its reader went away): the
// data was complete, and a reset would throw away what is still in
// flight to it. While y keeps talking (a download still flowing), b holds
// unread bytes when it is closed, and a close with unread bytes is a reset
// on Linux and macOS: Splice waits for b's send queue to drain first.
func TestSpliceFailureAfterCleanEndIsNoReset(t *testing.T) {
	for _, talks := range []bool{false, true} {
		errBoom := errors.New("boom")
		s := startSplice(t, nil)
		data := randBytes(t, 8<<20)
		type result struct {
			got []byte
			err error
		}
		res := make(chan result, 1)
		var wg sync.WaitGroup
		wg.Go(func() { // y reads slowly, so the end of the data is in flight
			var got bytes.Buffer
			buf := make([]byte, 64<<10)
			for {
				time.Sleep(5 * time.Millisecond)
				n, err := s.y.Read(buf)
				got.Write(buf[:n])
				if err != nil {
					res <- result{got.Bytes(), err}
					return
				}
			}
		})
		if talks {
			wg.Go(func() {
				buf := make([]byte, 64<<10)
				for {
					if _, err := s.y.Write(buf); err != nil {
						return
					}
				}
			})
			wg.Go(func() { _, _ = io.Copy(io.Discard, s.x) })
		}
		if _, err := s.x.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := s.x.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if !testutil.Poll(waitTimeout, func() bool { return s.b.closeWrites.Load() != 0 }) {
			t.Fatal("Splice did not pass the EOF on")
		}
		s.a.writeErr.Store(&errBoom)
		if !talks {
			if _, err := s.y.Write([]byte("y")); err != nil {
				t.Fatal(err)
			}
		}
		r := <-res
		if !errors.Is(r.err, io.EOF) || !bytes.Equal(r.got, data) {
			t.Fatalf("y talks %v: y read %d of %d bytes, then %v; want all of them and a clean end", talks, len(r.got), len(data), r.err)
		}
		if err := s.wait(t); !errors.Is(err, errBoom) {
			t.Fatalf("y talks %v: Splice = %v, want %v", talks, err, errBoom)
		}
		_ = s.x.Close()
		_ = s.y.Close()
		wg.Wait()
	}
}
