package main

import (
	"context"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandmux/sandmux/internal/testutil"
)

// A forward stopped after its stream ended cleanly, with bytes still on
// their way to a slow local client, closes: the client reads them all
// and the end, not a reset that would throw them away.
func TestForwardStopAfterCleanEndIsNoReset(t *testing.T) {
	stream, remote := tcpPair(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); acc <- c }()
	// A small receive buffer at the client and a large send buffer at the
	// forwarder: the splice is done before the client reads.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 16<<10) })
	}}
	lc, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	accepted := (<-acc).(*net.TCPConn)
	_ = accepted.SetWriteBuffer(2 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &forwarder{opener: fixedOpener{stream}, host: "box", errw: io.Discard}
	var wg sync.WaitGroup
	wg.Go(func() { f.handle(ctx, accepted, forwardSpec{Listen: "l", Target: "t"}) })
	const size = 512 << 10
	go func() {
		_, _ = remote.Write(make([]byte, size))
		_ = remote.CloseWrite()
		_, _ = io.Copy(io.Discard, remote)
	}()
	// The splice has passed the end on once the forwarder's socket has
	// half-closed (its FIN waits behind the data).
	rc, err := accepted.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	finSent := func() bool {
		var state uint8
		_ = rc.Control(func(fd uintptr) {
			if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				state = info.State
			}
		})
		return state == unix.BPF_TCP_FIN_WAIT1 || state == unix.BPF_TCP_FIN_WAIT2
	}
	if !testutil.Poll(time.Minute, finSent) {
		t.Fatal("the splice never passed the stream's end on")
	}
	cancel() // SIGTERM
	wg.Wait()
	if n, err := io.Copy(io.Discard, lc); n != size || err != nil {
		t.Fatalf("the local client read %d of %d bytes, then %v", n, size, err)
	}
}
