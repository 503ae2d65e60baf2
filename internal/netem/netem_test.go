package netem

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ioTimeout bounds every blocking test step so a bug fails the test instead
// of hanging it; it is never an assertion about speed.
const ioTimeout = 2 * time.Minute

// server is a loopback TCP server whose goroutines are all joined by its
// cleanup, so goleak sees only the proxy's own behaviour.
type server struct {
	ln    *net.TCPListener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[*net.TCPConn]struct{}
}

func startServer(t *testing.T, handle func(*net.TCPConn)) *server {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln, conns: make(map[*net.TCPConn]struct{})}
	s.wg.Go(func() {
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Go(func() {
				defer func() {
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
					c.Close()
				}()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

func echo(c *net.TCPConn) {
	if _, err := io.Copy(c, c); err == nil {
		c.CloseWrite()
	}
}

func startProxy(t *testing.T, cfg Config) *Proxy {
	t.Helper()
	p, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// async runs f in a goroutine whose result the caller must receive; cleanup
// closes the connections f uses, so a failed test still lets it finish.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func randomBytes(seed uint64, n int) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

// roundTrip checks that msg comes back through an echo path.
func roundTrip(t *testing.T, c *net.TCPConn, msg []byte) {
	t.Helper()
	c.SetDeadline(time.Now().Add(ioTimeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo mismatch: got %q, want %q", got, msg)
	}
}

// TestIntegrity sends independent 32 MiB streams in both directions at once
// and compares hashes, with the default buffer and with one small enough that
// backpressure is exercised constantly.
func TestIntegrity(t *testing.T) {
	const size = 32 << 20
	up := randomBytes(1, size)
	down := randomBytes(2, size)

	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"default", Config{Delay: 5 * time.Millisecond}},
		{"backpressure", Config{Delay: time.Millisecond, MaxInFlight: 256 << 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serverGot := make(chan [32]byte, 1)
			srv := startServer(t, func(c *net.TCPConn) {
				c.SetDeadline(time.Now().Add(ioTimeout))
				sent := async(func() error {
					if _, err := c.Write(down); err != nil {
						return err
					}
					return c.CloseWrite()
				})
				h := sha256.New()
				if _, err := io.Copy(h, c); err != nil {
					return
				}
				if err := <-sent; err != nil {
					return
				}
				serverGot <- [32]byte(h.Sum(nil))
			})
			cfg := tc.cfg
			cfg.Target = srv.addr()
			p := startProxy(t, cfg)

			c := dial(t, p.Addr())
			c.SetDeadline(time.Now().Add(ioTimeout))
			sent := async(func() error {
				if _, err := c.Write(up); err != nil {
					return err
				}
				return c.CloseWrite()
			})
			h := sha256.New()
			n, err := io.Copy(h, c)
			if err != nil {
				t.Fatalf("client read after %d bytes: %v", n, err)
			}
			if err := <-sent; err != nil {
				t.Fatalf("client write: %v", err)
			}
			if got, want := [32]byte(h.Sum(nil)), sha256.Sum256(down); got != want || n != size {
				t.Fatalf("server→client: %d bytes, sha256 %x, want %d bytes, %x", n, got, size, want)
			}
			select {
			case got := <-serverGot:
				if want := sha256.Sum256(up); got != want {
					t.Fatalf("client→server sha256 %x, want %x", got, want)
				}
			case <-time.After(ioTimeout):
				t.Fatal("server never finished reading")
			}
		})
	}
}

// TestHalfClose checks that a FIN crosses the proxy without ending the other
// direction: the server sees EOF and can still answer.
func TestHalfClose(t *testing.T) {
	srv := startServer(t, func(c *net.TCPConn) {
		c.SetDeadline(time.Now().Add(ioTimeout))
		got, err := io.ReadAll(c)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "got %q after EOF", got)
		c.CloseWrite()
	})
	p := startProxy(t, Config{Target: srv.addr(), Delay: 5 * time.Millisecond})

	c := dial(t, p.Addr())
	c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	reply, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	if want := `got "hello" after EOF`; string(reply) != want {
		t.Fatalf("reply %q, want %q", reply, want)
	}
}

// TestDelay checks the lower bound only: a round trip crosses the proxy twice.
func TestDelay(t *testing.T) {
	const delay = 25 * time.Millisecond
	srv := startServer(t, echo)
	p := startProxy(t, Config{Target: srv.addr(), Delay: delay})

	c := dial(t, p.Addr())
	roundTrip(t, c, []byte("warm-up")) // keeps the upstream dial out of the measurement
	for i := range 5 {
		start := time.Now()
		roundTrip(t, c, []byte{byte(i)})
		rtt := time.Since(start)
		t.Logf("round trip %d: %v", i, rtt)
		if rtt < 2*delay {
			t.Fatalf("round trip %d took %v, want ≥ %v", i, rtt, 2*delay)
		}
	}
}

// TestThroughput shows the delay is a pipe, not a sleep per chunk. A
// per-chunk sleep would need 1024 × 25 ms here; speed is logged, not asserted.
func TestThroughput(t *testing.T) {
	const size = 64 << 20
	srv := startServer(t, func(c *net.TCPConn) {
		c.SetDeadline(time.Now().Add(ioTimeout))
		n, err := io.Copy(io.Discard, c)
		if err != nil {
			return
		}
		binary.Write(c, binary.BigEndian, n)
	})
	p := startProxy(t, Config{Target: srv.addr(), Delay: 25 * time.Millisecond})

	c := dial(t, p.Addr())
	c.SetDeadline(time.Now().Add(ioTimeout))
	block := randomBytes(3, 1<<20)
	start := time.Now()
	for range size / len(block) {
		if _, err := c.Write(block); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := binary.Read(c, binary.BigEndian, &n); err != nil {
		t.Fatalf("read count: %v", err)
	}
	elapsed := time.Since(start)
	if n != size {
		t.Fatalf("server received %d bytes, want %d", n, size)
	}
	t.Logf("64 MiB through 25 ms one-way delay in %v: %.0f MiB/s", elapsed, float64(size>>20)/elapsed.Seconds())
}

// TestRate checks the lower bound only, as TestDelay does: connections
// share one link of Config.Rate each way, so two at once take at least as
// long as their bytes together need to cross it.
func TestRate(t *testing.T) {
	const (
		rate = 16 << 20 // bytes per second
		each = 2 << 20
	)
	srv := startServer(t, func(c *net.TCPConn) {
		c.SetDeadline(time.Now().Add(ioTimeout))
		n, err := io.Copy(io.Discard, c)
		if err == nil {
			binary.Write(c, binary.BigEndian, n)
		}
	})
	p := startProxy(t, Config{Target: srv.addr(), Rate: rate})
	conns := []*net.TCPConn{dial(t, p.Addr()), dial(t, p.Addr())}
	start := time.Now()
	var results []<-chan error
	for i, c := range conns {
		c.SetDeadline(time.Now().Add(ioTimeout))
		results = append(results, async(func() error {
			if _, err := c.Write(randomBytes(uint64(10+i), each)); err != nil {
				return err
			}
			if err := c.CloseWrite(); err != nil {
				return err
			}
			var n int64
			if err := binary.Read(c, binary.BigEndian, &n); err != nil {
				return fmt.Errorf("read count: %w", err)
			}
			if n != each {
				return fmt.Errorf("server received %d bytes, want %d", n, each)
			}
			return nil
		}))
	}
	for i, r := range results {
		if err := <-r; err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
	}
	elapsed := time.Since(start)
	// The last chunk read may be up to 64 KiB, taken as one.
	floor := time.Duration(float64(2*each-64<<10) / rate * float64(time.Second))
	t.Logf("2 × %d MiB over a %d MiB/s link in %v", each>>20, rate>>20, elapsed)
	if elapsed < floor {
		t.Fatalf("2 × %d bytes crossed a %d B/s link in %v, want ≥ %v", each, rate, elapsed, floor)
	}
}

func TestCut(t *testing.T) {
	srv := startServer(t, echo)
	p := startProxy(t, Config{Target: srv.addr(), Delay: time.Millisecond})

	live := []*net.TCPConn{dial(t, p.Addr()), dial(t, p.Addr())}
	for _, c := range live {
		roundTrip(t, c, []byte("before cut"))
	}
	if n := p.Cut(); n != len(live) {
		t.Fatalf("Cut() = %d, want %d", n, len(live))
	}
	for i, c := range live {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		if err == nil {
			t.Fatalf("conn %d: read succeeded after Cut", i)
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("conn %d: no error or EOF after Cut, only the read deadline", i)
		}
		t.Logf("conn %d after Cut: %v", i, err)
	}

	after := dial(t, p.Addr())
	roundTrip(t, after, []byte("after cut"))
	if got := p.Accepted(); got != 3 {
		t.Fatalf("Accepted() = %d, want 3", got)
	}
}

// TestFreezeThaw covers a pair that existed before Freeze and one that
// connected while frozen.
func TestFreezeThaw(t *testing.T) {
	srv := startServer(t, echo)
	p := startProxy(t, Config{Target: srv.addr(), Delay: time.Millisecond})

	before := dial(t, p.Addr())
	roundTrip(t, before, []byte("before freeze"))

	p.Freeze()
	during := dial(t, p.Addr())
	conns := []*net.TCPConn{before, during}
	msgs := [][]byte{randomBytes(4, 200<<10), randomBytes(5, 200<<10)}
	var sent []<-chan error
	for i, c := range conns {
		c.SetDeadline(time.Now().Add(ioTimeout))
		sent = append(sent, async(func() error {
			_, err := c.Write(msgs[i])
			return err
		}))
	}

	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := c.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Fatalf("conn %d while frozen: read %d bytes, err %v; want nothing until the deadline", i, n, err)
		}
	}

	p.Thaw()
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(ioTimeout))
		got := make([]byte, len(msgs[i]))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("conn %d after thaw: %v", i, err)
		}
		if !bytes.Equal(got, msgs[i]) {
			t.Fatalf("conn %d after thaw: echo differs", i)
		}
		if err := <-sent[i]; err != nil {
			t.Fatalf("conn %d write: %v", i, err)
		}
	}
}

// TestFreezeToTarget: while only the way to the target is frozen, the
// target's bytes still reach the client, the client's are held and
// counted, and a thaw delivers them in order.
func TestFreezeToTarget(t *testing.T) {
	speak := make(chan struct{})
	letSpeak := sync.OnceFunc(func() { close(speak) })
	greeting := []byte("from the target while frozen")
	srv := startServer(t, func(c *net.TCPConn) {
		<-speak
		if _, err := c.Write(greeting); err == nil {
			echo(c)
		}
	})
	t.Cleanup(letSpeak) // before the server's cleanup waits for its handler
	p := startProxy(t, Config{Target: srv.addr(), Delay: time.Millisecond})
	c := dial(t, p.Addr())

	p.FreezeToTarget()
	msg := randomBytes(6, 200<<10)
	c.SetDeadline(time.Now().Add(ioTimeout))
	sent := async(func() error {
		_, err := c.Write(msg)
		return err
	})
	deadline := time.Now().Add(ioTimeout)
	for p.HeldToTarget() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no bytes held while frozen to the target")
		}
		time.Sleep(time.Millisecond)
	}
	letSpeak()
	got := make([]byte, len(greeting))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, greeting) {
		t.Fatalf("the target's bytes while frozen to it: %q, %v; want %q", got, err, greeting)
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("while frozen to the target: read %d bytes, err %v; want nothing until the deadline (no echo)", n, err)
	}
	if held := p.HeldToTarget(); held <= 0 || held > int64(len(msg)) {
		t.Fatalf("HeldToTarget() = %d, want 1..%d", held, len(msg))
	}

	p.Thaw()
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	echoed := make([]byte, len(msg))
	if _, err := io.ReadFull(c, echoed); err != nil || !bytes.Equal(echoed, msg) {
		t.Fatalf("echo after thaw: err %v, equal %v", err, bytes.Equal(echoed, msg))
	}
	if err := <-sent; err != nil {
		t.Fatalf("write: %v", err)
	}
	if held := p.HeldToTarget(); held != 0 {
		t.Fatalf("HeldToTarget() = %d once everything was delivered, want 0", held)
	}
}

// TestCloseTearsDown checks that Close ends pairs that are blocked in every
// way at once (frozen, with data queued) and that clients notice; goleak in
// TestMain checks that nothing is left running.
func TestCloseTearsDown(t *testing.T) {
	srv := startServer(t, echo)
	p, err := Start(Config{Target: srv.addr(), Delay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr())
	if _, err := c.Write([]byte("stuck behind an hour of delay")); err != nil {
		t.Fatal(err)
	}
	p.Freeze()
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); err == nil || ok && ne.Timeout() {
		t.Fatalf("read after Close: %v, want error or EOF", err)
	}
}

// TestQueueBound checks the backpressure rule directly: the reader is held
// back once a further full read could exceed MaxInFlight.
func TestQueueBound(t *testing.T) {
	q := newQueue(2 * readSize)
	stopped := make(chan struct{})
	close(stopped) // waitSpace reports false instead of blocking

	for i := range 2 {
		if !q.waitSpace(stopped) {
			t.Fatalf("chunk %d refused below the bound", i)
		}
		q.push(chunk{buf: getBuf(bigClass), n: readSize})
	}
	if q.waitSpace(stopped) {
		t.Fatal("third full chunk admitted beyond MaxInFlight")
	}
	c, ok := q.pop(stopped)
	if !ok {
		t.Fatal("pop failed with chunks queued")
	}
	if q.waitSpace(stopped) {
		t.Fatal("popped but unwritten chunk no longer counted")
	}
	q.release(c)
	if !q.waitSpace(stopped) {
		t.Fatal("space not returned after release")
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Target: "127.0.0.1:1", Delay: -time.Second},
		{Target: "127.0.0.1:1", MaxInFlight: -1},
	} {
		if p, err := Start(cfg); err == nil {
			p.Close()
			t.Errorf("Start(%+v) succeeded", cfg)
		}
	}
}

// TestCutAt checks that a mark cuts the connection carrying the bytes that
// reach it, passes none of that read on, and that the next mark waits for
// the next connection's bytes.
func TestCutAt(t *testing.T) {
	accepted, received := make(chan struct{}, 3), make(chan int64, 3)
	srv := startServer(t, func(c *net.TCPConn) {
		accepted <- struct{}{}
		c.SetDeadline(time.Now().Add(ioTimeout))
		n, _ := io.Copy(io.Discard, c)
		received <- n
	})
	// wait fails the test instead of hanging it.
	wait := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(ioTimeout):
			t.Fatalf("no %s", what)
		}
	}
	count := func() int64 {
		t.Helper()
		select {
		case n := <-received:
			return n
		case <-time.After(ioTimeout):
			t.Fatal("the target's connection never ended")
			return 0
		}
	}
	p := startProxy(t, Config{Target: srv.addr()})
	const first, second = 1 << 20, 3 << 20
	p.CutAt(second, -1, first) // in any order; -1 is dropped

	var got int64
	for i, mark := range []int64{first, second} {
		c := dial(t, p.Addr())
		// A mark reached while the proxy still dials would cut a pair
		// the target never saw.
		wait("connection at the target", accepted)
		c.SetDeadline(time.Now().Add(ioTimeout))
		buf := randomBytes(uint64(i), 64<<10)
		var err error
		for err == nil {
			_, err = c.Write(buf)
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("conn %d: never cut, only the deadline (carried %d)", i, p.Carried())
		}
		got += count()
		if got > mark {
			t.Errorf("conn %d: the target got %d bytes in all, past the mark at %d", i, got, mark)
		}
		if c := p.Carried(); c < mark {
			t.Errorf("conn %d: cut after %d bytes carried, before the mark at %d", i, c, mark)
		}
		if n := p.CutsAt(); n != int64(i+1) {
			t.Errorf("CutsAt() = %d after conn %d, want %d", n, i, i+1)
		}
	}
	// No mark is left: a third connection is not cut.
	c := dial(t, p.Addr())
	c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := c.Write(make([]byte, 4<<20)); err != nil {
		t.Fatalf("write with no mark left: %v", err)
	}
	c.CloseWrite()
	if n := count(); n != 4<<20 {
		t.Fatalf("with no mark left the target got %d bytes, want %d", n, 4<<20)
	}
}
