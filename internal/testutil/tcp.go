package testutil

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Server is a loopback TCP server that serves each connection in its own
// goroutine. It tracks the connections it holds so that Close never waits
// on a peer that stays open.
type Server struct {
	// Addr is the "127.0.0.1:PORT" the server listens on.
	Addr string

	ln     net.Listener
	wg     sync.WaitGroup // the accept loop and every handler
	once   sync.Once
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

// Serve listens on a loopback port and runs handle for every connection,
// closing the connection when handle returns. The server is closed when
// the test ends.
func Serve(t testing.TB, handle func(net.Conn)) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testutil: listen on loopback: %v", err)
	}
	s := ServeListener(ln, handle)
	t.Cleanup(s.Close)
	return s
}

// ServeListener is Serve on a listener of the caller's (a TLS one, say),
// for programs without a testing.TB; the caller must Close the server.
func ServeListener(ln net.Listener, handle func(net.Conn)) *Server {
	s := &Server{Addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept(handle)
	return s
}

// EchoServer is Serve with Echo as the handler.
func EchoServer(t testing.TB) *Server {
	t.Helper()
	return Serve(t, Echo)
}

// ResettingServer is a target that sends n bytes on each connection,
// waits for one byte from its client, then resets the connection (RST),
// as a target that crashes mid-transfer does.
func ResettingServer(t testing.TB, n int) *Server {
	return Serve(t, func(c net.Conn) {
		_, _ = c.Write(make([]byte, n))
		_, _ = c.Read(make([]byte, 1))
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	})
}

// SourceServer is a target that sends zeros on each connection, 64 KiB a
// write, until a write fails: a download that lasts as long as its client
// reads.
func SourceServer(t testing.TB) *Server {
	t.Helper()
	return Serve(t, func(c net.Conn) {
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
}

// Drained is how one connection to a DrainServer ended: the bytes it
// read and the error its reading ended with (nil: a clean end, a FIN).
type Drained struct {
	N   int64
	Err error
}

// DrainServer is a target that reads each connection to its end and
// reports on the channel how it ended; its buffer holds eight reports.
func DrainServer(t testing.TB) (*Server, <-chan Drained) {
	t.Helper()
	ch := make(chan Drained, 8)
	s := Serve(t, func(c net.Conn) {
		n, err := io.Copy(io.Discard, c)
		ch <- Drained{N: n, Err: err}
	})
	return s, ch
}

// SlowReaderServer is a target that reads its first byte, waits until
// talk is closed, then writes 1 MiB back while it reads the rest slowly
// (16 KiB every 2 ms), so that the tail of what it is sent is still on its
// way when its peer ends; it reports how its reading ended (N counts every
// byte read).
func SlowReaderServer(t testing.TB, talk <-chan struct{}) (*Server, <-chan Drained) {
	t.Helper()
	ch := make(chan Drained, 8)
	s := Serve(t, func(c net.Conn) {
		var first [1]byte
		if _, err := io.ReadFull(c, first[:]); err != nil {
			ch <- Drained{Err: err}
			return
		}
		<-talk
		var wg sync.WaitGroup
		defer wg.Wait() // its writes end with the connection
		wg.Go(func() {
			buf := make([]byte, 64<<10)
			for range 16 {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		})
		d := Drained{N: 1}
		buf := make([]byte, 16<<10)
		for {
			time.Sleep(2 * time.Millisecond) // the pace of a slow reader
			n, err := c.Read(buf)
			d.N += int64(n)
			if err != nil {
				if err != io.EOF {
					d.Err = err
				}
				ch <- d
				_ = c.Close()
				return
			}
		}
	})
	return s, ch
}

// AwaitDrained returns the next report on ch, or fails the test after a
// minute.
func AwaitDrained(t testing.TB, ch <-chan Drained) Drained {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(time.Minute):
		t.Fatal("testutil: the target's connection did not end")
		return Drained{}
	}
}

// Echo writes back everything c sends. After c's EOF it half-closes and
// waits for the peer to close too, so the peer's last read sees our FIN
// and never a reset.
func Echo(c net.Conn) {
	_, _ = io.Copy(c, c)
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, c)
}

func (s *Server) accept(handle func(net.Conn)) {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if !s.track(c) {
			_ = c.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			handle(c)
		}()
	}
}

// track registers c, unless Close has begun: Close would miss it.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	_ = c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Close stops accepting, closes the connections still open (which ends
// handlers blocked on them) and waits for every handler to return. It may
// be called more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		_ = s.ln.Close()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
	})
	s.wg.Wait()
}
