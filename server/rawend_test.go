package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/sandmux/sandmux/internal/testutil"
)

// A raw client uploads and closes normally (1000) while its target, still
// reading the upload, talks back: the target must read the whole upload.
func TestRawUploadThenNormalCloseIsNoReset(t *testing.T) {
	const size = 1 << 20
	talk := make(chan struct{})
	close(talk)
	target, drained := testutil.SlowReaderServer(t, talk)
	ws, nc := rawUpload(t, target.Addr, size)
	read := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, nc); close(read) }()
	_ = ws.Close(websocket.StatusNormalClosure, "")
	if d := testutil.AwaitDrained(t, drained); d.N != size || d.Err != nil {
		t.Errorf("target read %d of %d bytes, then %v; want all and a clean end", d.N, size, d.Err)
	}
	<-read
}

// A raw client that vanishes mid-upload (its connection closed without a
// close frame: killed, or `sandmux proxy --raw` interrupted) resets the
// target's connection: the target must not take the part for the whole.
func TestRawClientGoneResetsTarget(t *testing.T) {
	target, drained := testutil.DrainServer(t)
	ws, _ := rawUpload(t, target.Addr, 64<<10)
	_ = ws.CloseNow()
	if d := testutil.AwaitDrained(t, drained); !errors.Is(d.Err, syscall.ECONNRESET) {
		t.Fatalf("the target read %d bytes, then %v; want a reset", d.N, d.Err)
	}
}

// rawUpload connects a raw client (no subprotocol) to a server whose
// default target is target, and sends size bytes.
func rawUpload(t *testing.T, target string, size int) (*websocket.Conn, net.Conn) {
	t.Helper()
	s := startServer(t, target, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	ws, _, err := websocket.Dial(ctx, s.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	nc := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	if _, err := nc.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	return ws, nc
}

// TestRawSessionEndLine: a raw session's "session ended" line says why it
// ended, how long it lasted and its bytes, as a sandmux session's does
// (README, --log-level). It said only err=<nil> for any clean end, and
// on shutdown the server's own close frame read back as the error
// ("received close frame: status = StatusServiceRestart").
func TestRawSessionEndLine(t *testing.T) {
	const ended = `msg="session ended"`
	dialRaw := func(t *testing.T, url string) (*websocket.Conn, net.Conn) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		ws, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ws, websocket.NetConn(ctx, ws, websocket.MessageBinary)
	}

	for name, end := range map[string]struct {
		close func(*websocket.Conn)
		want  []string
	}{
		"client closed": {func(ws *websocket.Conn) { _ = ws.Close(websocket.StatusNormalClosure, "") },
			[]string{`reason="client closed the connection"`, "bytes_in=1000", "bytes_out=0", "duration="}},
		"client lost": {func(ws *websocket.Conn) { _ = ws.CloseNow() },
			[]string{`reason="client lost (its connection ended without a close)"`, "err="}},
	} {
		t.Run(name, func(t *testing.T) {
			target, drained := testutil.DrainServer(t)
			s, logs := logServer(t, target.Addr, nil)
			ws, nc := dialRaw(t, s.url)
			if _, err := nc.Write(make([]byte, 1000)); err != nil {
				t.Fatal(err)
			}
			end.close(ws)
			testutil.AwaitDrained(t, drained)
			waitLog(t, logs, append([]string{ended, `mode=raw`}, end.want...)...)
		})
	}

	t.Run("target closed", func(t *testing.T) {
		target := testutil.Serve(t, func(c net.Conn) { _, _ = c.Write([]byte("bye")) })
		s, logs := logServer(t, target.Addr, nil)
		_, nc := dialRaw(t, s.url)
		if b, _ := io.ReadAll(nc); string(b) != "bye" {
			t.Errorf("read %q, want %q", b, "bye")
		}
		waitLog(t, logs, ended, `mode=raw`, `reason="target closed the connection"`, "bytes_out=3")
	})

	t.Run("server shutting down", func(t *testing.T) {
		target, _ := testutil.DrainServer(t)
		s, logs := logServer(t, target.Addr, nil)
		_, nc := dialRaw(t, s.url)
		if _, err := nc.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		waitLog(t, logs, `msg="session started"`, `mode=raw`)
		_ = s.srv.Close()
		waitLog(t, logs, ended, `mode=raw`, `reason="server shutting down"`)
		if strings.Contains(logs.String(), "received close frame") {
			t.Errorf("the server's own close frame is logged as the error:\n%s", logs.String())
		}
	})
}

// A target that cannot be connected is the client's request failing,
// not the server: INFO for a raw session as for a stream (raw was WARN).
func TestTargetFailureLevel(t *testing.T) {
	s, logs := logServer(t, testutil.FreeAddr(t), nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, _, err := websocket.Dial(ctx, s.url, nil); err == nil {
		t.Fatal("raw dial to a target down succeeded")
	}
	if _, err := dial(t, clientConfig(s.url)).OpenStream(ctx, ""); err == nil {
		t.Fatal("a stream to a target down opened")
	}
	for _, msg := range []string{`msg="raw session: cannot connect target"`, `msg="cannot connect target"`} {
		waitLog(t, logs, msg)
		if n := testutil.CountLines(logs.String(), "level=INFO", msg); n != 1 {
			t.Errorf("%s not logged once at INFO:\n%s", msg, logs.String())
		}
	}
}
