package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/netem"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
	"github.com/sandmux/sandmux/server"
)

// blackhole returns a loopback address whose connects hang: a listener
// with a backlog of 0 that never accepts, its queue already full.
func blackhole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)
	for range 4 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	if c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
		_ = c.Close()
		t.Fatal("the full listener still accepts connections")
	}
	return addr
}

// A target whose connect hangs is reported as such: the client waits for
// the reply longer than the server's dial timeout, which equals the
// header timeout by default (here, scaled down, the dial takes longer,
// so that the client's wait would run out first were it the header
// timeout).
func TestUnreachableTargetReply(t *testing.T) {
	hole := blackhole(t)
	_, url := limitedServer(t, func(c *server.Config) {
		c.Allow = []string{hole}
		c.DialTimeout = 1500 * time.Millisecond
		c.Mux.HeaderTimeout = time.Second
	})
	cfg := fastClient(url)
	cfg.Mux.HeaderTimeout = time.Second
	cfg.NoResume = true
	sess, err := client.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	_, err = sess.OpenStream(context.Background(), hole)
	if want := "cannot reach " + hole + " inside the sandbox: connection timed out"; err == nil || err.Error() != want {
		t.Fatalf("open: %v, want %q", err, want)
	}
}

// A stream opened just before an outage longer than the header timeout
// (a sandbox paused as ssh starts) outlives it on a resumable session.
func TestReplyOutlivesAnOutage(t *testing.T) {
	srv := fastServer(t, testutil.EchoServer(t).Addr, 30*time.Second, nil)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	fault, err := netem.Start(netem.Config{Target: hs.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer fault.Close()
	cfg := fastClient("ws://" + fault.Addr())
	cfg.Mux.HeaderTimeout = 300 * time.Millisecond
	sess, err := client.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	testutil.WaitFor(t, 5*time.Second, "the welcome", sess.Welcomed)
	liveStream(t, sess)
	fault.Freeze()
	c, err := sess.OpenStreamEarly(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(c, make([]byte, 2))
		done <- err
	}()
	// The outage lasts past twice the header timeout, the reply's wait
	// on a session that does not resume.
	<-time.After(4 * cfg.Mux.HeaderTimeout)
	fault.Thaw()
	fault.Cut()
	if err := <-done; err != nil {
		t.Fatalf("a stream opened before the outage: %v", err)
	}
}

// A target that resets its connection mid-transfer resets the stream: the
// client reads an error after the bytes that came, never a clean end.
func TestTargetResetResetsStream(t *testing.T) {
	target := testutil.ResettingServer(t, 64<<10).Addr
	c := streamTo(t, target)
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := io.ReadFull(c, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, c); !errors.Is(err, mux.ErrStreamReset) {
		t.Fatalf("read %d more bytes, then %v, after the target reset; want the stream reset", n, err)
	}
}

// A stream that the client aborts mid-transfer resets the target's
// connection: the target reads an error after the bytes that came, never a
// clean end it would take for the whole upload.
func TestStreamResetResetsTarget(t *testing.T) {
	target, drained := testutil.DrainServer(t)
	c := streamTo(t, target.Addr)
	if _, err := c.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	mux.Abort(c)
	select {
	case d := <-drained:
		if !errors.Is(d.Err, syscall.ECONNRESET) {
			t.Fatalf("the target read %d bytes, then %v; want a reset", d.N, d.Err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the target's connection did not end")
	}
}

// A stream reset while the server is still connecting its target resets
// the target's connection once it is made, never a clean end with no
// data: the target's listener here has a full queue, so the connect waits
// for a SYN retransmission while the client resets.
func TestStreamResetWhileDialingResetsTarget(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "listener")
	ln, err := net.FileListener(f)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	filler, err := net.Dial("tcp", addr) // fills the queue
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()

	_, url := limitedServer(t, func(c *server.Config) { c.Allow = []string{addr} })
	sess, err := client.Dial(context.Background(), fastClient(url))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	c, err := sess.OpenStreamEarly(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	mux.Abort(c)

	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(waitTimeout))
	first, err := ln.Accept() // the filler: room for the server's connect
	if err != nil {
		t.Fatal(err)
	}
	_ = first.Close()
	tc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	_ = tc.SetReadDeadline(time.Now().Add(waitTimeout))
	if n, err := io.Copy(io.Discard, tc); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the target read %d bytes, then %v; want a reset", n, err)
	}
}

// A target that sends its whole reply and its end, then closes while the
// client is still uploading: the client reads the reply and its clean end,
// and its upload fails at once (as against a closed TCP socket) instead
// of going on unread until the stream's close timeout.
func TestTargetClosedAfterReplyFailsUpload(t *testing.T) {
	target := testutil.Serve(t, func(c net.Conn) {
		_, _ = c.Write(make([]byte, 64<<10))
		_ = c.(*net.TCPConn).CloseWrite()
		_, _ = c.Read(make([]byte, 1))
	}) // then closed, with the upload unread
	c := streamTo(t, target.Addr)
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(c); len(b) != 64<<10 || err != nil {
		t.Fatalf("reply: %d bytes, %v; want 64 KiB and its end", len(b), err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := c.Write(buf); err != nil {
			if !errors.Is(err, mux.ErrStreamReset) {
				t.Fatalf("upload after the target closed: %v, want the stream reset", err)
			}
			return
		}
	}
}

// streamTo opens a stream to target through a server that allows it, on a
// session of its own; both end with the test.
func streamTo(t *testing.T, target string) net.Conn {
	t.Helper()
	_, url := limitedServer(t, func(c *server.Config) { c.Allow = []string{target} })
	sess, err := client.Dial(context.Background(), fastClient(url))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	c, err := sess.OpenStream(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
