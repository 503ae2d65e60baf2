package server_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/sandmux/sandmux/internal/testutil"
)

// A raw client uploads and closes normally (1000) while its target, still
// reading the upload, writes: the target must read the whole upload.
func TestRawUploadThenNormalCloseIsNoReset(t *testing.T) {
	const size = 1 << 20
	type drained struct {
		n   int64
		err error
	}
	got := make(chan drained, 1)
	target := testutil.Serve(t, func(c net.Conn) {
		var n int64
		sent := false
		buf := make([]byte, 16<<10)
		for {
			time.Sleep(2 * time.Millisecond)
			m, err := c.Read(buf)
			n += int64(m)
			if n > 512<<10 && !sent {
				sent = true
				_, _ = c.Write([]byte("progress"))
			}
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				got <- drained{n, err}
				return
			}
		}
	})
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
	go func() { _, _ = io.Copy(io.Discard, nc) }()
	_ = ws.Close(websocket.StatusNormalClosure, "")
	select {
	case d := <-got:
		if d.n != size || d.err != nil {
			t.Errorf("target read %d of %d bytes, then %v; want all and a clean end", d.n, size, d.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("timeout")
	}
}
