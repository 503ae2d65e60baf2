package server_test

import (
	"context"
	"errors"
	"io"
	"net"
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
