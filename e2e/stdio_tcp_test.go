//go:build linux

package e2e

import (
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
)

// startOnTCP starts cmd with one TCP connection as its stdin and stdout,
// as inetd gives them, and returns the client's end of it.
func startOnTCP(t *testing.T, cmd *exec.Cmd) *net.TCPConn {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	mine, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mine.Close() })
	accepted, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := accepted.File()
	_ = accepted.Close()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin, cmd.Stdout = theirs, theirs
	err = cmd.Start()
	_ = theirs.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Wait() })
	_ = mine.SetDeadline(time.Now().Add(30 * time.Second))
	return mine
}

// TestProxyTCPStdioResetOnCut: a proxy whose stdin and stdout are one TCP
// connection resets it when the stream is cut (here the target resets its
// connection): a FIN would tell its client that what came was the whole.
func TestProxyTCPStdioResetOnCut(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{Target: testutil.ResettingServer(t, 64<<10).Addr})
	eachProxyMode(t, srv.URL, func(t *testing.T, ctx context.Context, cmd *exec.Cmd) {
		var stderr strings.Builder
		cmd.Stderr = &stderr
		mine := startOnTCP(t, cmd)
		if _, err := io.ReadFull(mine, make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
		if _, err := mine.Write([]byte("x")); err != nil { // the target resets then
			t.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, mine); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("the proxy's client read %d more bytes, then %v; want a reset (stderr %q)", n, err, stderr.String())
		}
	})
}

// TestProxyTCPStdioTargetEndsFirst: a proxy whose stdin and stdout are one
// TCP connection passes the target's end on as a FIN and then carries
// what its client still sends to the target, to its client's end, not a
// reset.
func TestProxyTCPStdioTargetEndsFirst(t *testing.T) {
	t.Parallel()
	first, after := testutil.RandomBytes(1<<20, 1), testutil.RandomBytes(1<<20, 2)
	target, got := testutil.FirstThenRead(t, first)
	srv := startServer(t, serverOpts{Target: target.Addr})
	for _, mode := range []string{"no-agent", "agent"} {
		ctx := testContext(t, time.Minute)
		cmd := sandmux(ctx, nil, proxyArgs(t, srv.URL, mode)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		mine := startOnTCP(t, cmd)
		down, err := io.ReadAll(mine)
		if err != nil || testutil.FirstDiff(down, first) >= 0 {
			t.Fatalf("%s: read %d of %d bytes, then %v; want them all, then EOF", mode, len(down), len(first), err)
		}
		if _, err := mine.Write(after); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		_ = mine.CloseWrite()
		testutil.AwaitReceived(t, got, after)
		if err := cmd.Wait(); err != nil || stderr.String() != "" {
			t.Fatalf("%s: the proxy exited with %v, stderr %q; want success, nothing said", mode, err, stderr.String())
		}
	}
}
