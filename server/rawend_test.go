package server_test

import (
	"context"
	"io"
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
	s := startServer(t, target.Addr, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	nc := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	if _, err := nc.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, nc); close(read) }()
	_ = ws.Close(websocket.StatusNormalClosure, "")
	if d := testutil.AwaitDrained(t, drained); d.N != size || d.Err != nil {
		t.Errorf("target read %d of %d bytes, then %v; want all and a clean end", d.N, size, d.Err)
	}
	<-read
}
