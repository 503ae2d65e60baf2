package agent

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/server"
)

// A framing proxy sends its whole upload and its EOF frame, then closes
// without reading the reply (forward's local client closed). The upload
// was complete; the target must read all of it and a clean end.
func TestFrameInUploadThenCloseIsNoReset(t *testing.T) {
	const size = 8 << 20
	closed := make(chan struct{})
	type drained struct {
		n   int64
		err error
	}
	got := make(chan drained, 1)
	target := testutil.Serve(t, func(c net.Conn) {
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil {
			got <- drained{0, err}
			return
		}
		<-closed
		go func() {
			buf := make([]byte, 64<<10)
			for i := 0; i < 16; i++ {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
		var n int64 = 1
		buf := make([]byte, 16<<10)
		for {
			time.Sleep(2 * time.Millisecond)
			m, err := c.Read(buf)
			n += int64(m)
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				got <- drained{n, err}
				return
			}
		}
	})
	_, url := testutil.SandmuxServer(t, func(c *server.Config) { c.Allow = []string{target.Addr} })
	dir := shortDir(t)
	runAgent(t, dir, nil)
	c, err := Open(context.Background(), dir, noStart, OpenRequest{URL: url, Target: target.Addr, Host: "box", ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	close(closed)
	_ = c.Close()
	select {
	case d := <-got:
		if d.n != size || d.err != nil {
			t.Errorf("target read %d of %d bytes, then %v; want all and a clean end", d.n, size, d.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("timeout")
	}
}
