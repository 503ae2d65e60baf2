package main

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/server"
	"golang.org/x/sys/unix"
)

// closeWriteSignal is a stream whose CloseWrite closes done once it has
// returned.
type closeWriteSignal struct {
	net.Conn
	done chan struct{}
}

func (c closeWriteSignal) CloseWrite() error {
	defer close(c.done)
	return c.Conn.(interface{ CloseWrite() error }).CloseWrite()
}

type drained struct {
	n   int64
	err error
}

// A local client uploads, then closes its socket normally (FIN, nothing
// unread), as `nc -q0` or a fire-and-forget sender does. The target talks
// back while it is still reading the upload. Plain TCP would give the
// target the whole upload; through forward it must too.
func TestForwardUploadThenCloseIsNoReset(t *testing.T) {
	const size = 4 << 20
	closed := make(chan struct{})
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
		// read the rest slowly, so its tail is still in flight
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
	cfg := client.DefaultConfig()
	cfg.URL = url
	sess, err := client.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	stream, err := sess.OpenStream(context.Background(), target.Addr)
	if err != nil {
		t.Fatal(err)
	}
	var errw testutil.Buffer
	finished := make(chan struct{})
	local, wait := forwardOne(t, context.Background(), closeWriteSignal{stream, finished}, &errw)
	if _, err := local.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	// Wait until the local kernel holds nothing unsent: everything was
	// acknowledged by forward's socket, so plain TCP would deliver it all.
	rc, _ := local.SyscallConn()
	testutil.WaitFor(t, 10*time.Second, "local send queue empty", func() bool {
		var q int
		_ = rc.Control(func(fd uintptr) { q, _ = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) })
		return q == 0
	})
	_ = local.Close()
	<-finished // forward passed the EOF on as the stream's FIN
	close(closed)
	select {
	case d := <-got:
		if d.n != size || d.err != nil {
			t.Errorf("target read %d of %d bytes, then %v; want all and a clean end", d.n, size, d.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("timeout")
	}
	wait()
}
