package client_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/testutil"
)

// recorder is a target that keeps every byte its connections send.
type recorder struct {
	mu    sync.Mutex
	got   bytes.Buffer
	conns int
}

func newRecorder(t *testing.T) (*recorder, string) {
	r := &recorder{}
	srv := testutil.Serve(t, func(c net.Conn) {
		r.mu.Lock()
		r.conns++
		r.mu.Unlock()
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			r.mu.Lock()
			r.got.Write(buf[:n])
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	})
	return r, srv.Addr
}

func (r *recorder) snapshot() (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got.String(), r.conns
}

// cutter relays to a server; its first connection is reset towards the
// client once cut says so, with what the server answered held back after
// the first withhold bytes of its HTTP answer: all of it (the drop comes
// before the 101), or none of it beyond the 101's header (the drop comes
// after the client's hello and its stream's first bytes, before the
// WELCOME). Later connections are relayed as they are.
func cutter(t *testing.T, server string, afterHeader bool, cut <-chan struct{}) (url string, conns *atomic.Int32) {
	conns = &atomic.Int32{}
	relay := testutil.Serve(t, func(c net.Conn) {
		up, err := net.Dial("tcp", server)
		if err != nil {
			return
		}
		defer up.Close()
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() { _, _ = io.Copy(up, c); _ = up.Close() })
		if conns.Add(1) > 1 {
			_, _ = io.Copy(c, up)
			_ = c.Close()
			return
		}
		br := bufio.NewReader(up)
		var head strings.Builder
		for !strings.HasSuffix(head.String(), "\r\n\r\n") {
			b, err := br.ReadByte()
			if err != nil {
				return
			}
			head.WriteByte(b)
		}
		if afterHeader {
			_, _ = io.WriteString(c, head.String())
		}
		<-cut
		_ = c.(*net.TCPConn).SetLinger(0) // a reset, as a fault or an edge drops it
		_ = c.Close()
	})
	return "ws://" + relay.Addr, conns
}

// The --no-agent dial's one redial after a connection dropped unanswered
// must never put a stream's bytes on the wire twice (sshd would see ssh's
// banner twice, or a packet doubled). The redial is of the upgrade alone:
// a drop before the 101 is redialled, and the stream's first bytes go out
// once, on the second connection. A drop after the 101, when the hello
// and the stream's first bytes have gone out (spec §9.2, a --no-agent
// session sends its stream with the hello) and before the WELCOME, is
// never redialled: the stream ends with an error, and the target has the
// bytes at most once.
func TestDialStreamRedialNeverRepeatsBytes(t *testing.T) {
	const banner = "SSH-2.0-OpenSSH_9.9 once\r\n"
	t.Run("dropped before the answer", func(t *testing.T) {
		rec, target := newRecorder(t)
		cut := make(chan struct{})
		close(cut)
		url, conns := cutter(t, strings.TrimPrefix(wsURL(quietServer(t, newServer(t, target), false).URL), "ws://"), false, cut)
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		conn, closeFn, err := client.DialStream(ctx, testConfig(url), "")
		if err != nil {
			t.Fatalf("DialStream after one drop: %v", err)
		}
		defer closeFn()
		if _, err := io.WriteString(conn, banner); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, waitTimeout, "the banner at the target", func() bool {
			got, _ := rec.snapshot()
			return len(got) >= len(banner)
		})
		closeFn()
		if got, n := rec.snapshot(); got != banner || n != 1 {
			t.Fatalf("the target got %q on %d connections, want the banner once on one", got, n)
		}
		if n := conns.Load(); n != 2 {
			t.Fatalf("%d connections, want 2 (one dropped, one redial)", n)
		}
	})
	t.Run("dropped after the hello and the stream", func(t *testing.T) {
		rec, target := newRecorder(t)
		cut := make(chan struct{})
		url, conns := cutter(t, strings.TrimPrefix(wsURL(quietServer(t, newServer(t, target), false).URL), "ws://"), true, cut)
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		conn, closeFn, err := client.DialStream(ctx, testConfig(url), "")
		if err != nil {
			close(cut)
			t.Fatalf("DialStream: %v", err)
		}
		defer closeFn()
		if _, err := io.WriteString(conn, banner); err != nil {
			close(cut)
			t.Fatal(err)
		}
		testutil.WaitFor(t, waitTimeout, "the banner at the target", func() bool {
			got, _ := rec.snapshot()
			return len(got) >= len(banner)
		})
		close(cut)
		_, err = io.ReadAll(conn)
		if !errors.Is(err, client.ErrNoWelcome) {
			t.Fatalf("the stream after its session was lost before the WELCOME: %v, want ErrNoWelcome", err)
		}
		closeFn()
		if got, n := rec.snapshot(); got != banner || n != 1 {
			t.Fatalf("the target got %q on %d connections, want the banner once on one", got, n)
		}
		if n := conns.Load(); n != 1 {
			t.Fatalf("%d connections, want 1: a session lost before its WELCOME is not dialled again", n)
		}
	})
}
