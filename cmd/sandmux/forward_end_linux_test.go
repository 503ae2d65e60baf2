package main

import (
	"context"
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

// A local client uploads, then closes its socket normally (FIN, nothing
// unread), as `nc -q0` or a fire-and-forget sender does. The target talks
// back while it is still reading the upload. Plain TCP would give the
// target the whole upload; through forward it must too.
func TestForwardUploadThenCloseIsNoReset(t *testing.T) {
	// Within a stream's 512 KiB start window: the whole upload must fit in
	// the tunnel while the target reads nothing, or the write waits for it.
	const size = 384 << 10
	talk := make(chan struct{})
	target, drained := testutil.SlowReaderServer(t, talk)
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
	close(talk)
	if d := testutil.AwaitDrained(t, drained); d.N != size || d.Err != nil {
		t.Errorf("target read %d of %d bytes, then %v; want all and a clean end", d.N, size, d.Err)
	}
	wait()
}
