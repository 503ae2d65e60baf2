//go:build !windows

package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// openTCP hands one end of a loopback TCP connection to the agent as both
// stdin and stdout, as `sandmux forward` hands a connection it accepted,
// and returns the other end, the local client's.
func (r *handoffRig) openTCP(t *testing.T) (*net.TCPConn, *Handoff) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	local, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = local.Close() })
	accepted, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	f, err := accepted.File()
	_ = accepted.Close()
	if err != nil {
		t.Fatal(err)
	}
	conn, h, err := OpenStdio(context.Background(), r.dir, noStart, r.req, f, f)
	if err != nil || conn != nil || h == nil {
		t.Fatalf("OpenStdio = %v, %v, %v: want a hand-off", conn, h, err)
	}
	_ = local.SetDeadline(time.Now().Add(10 * time.Second))
	return local, h
}

// echoOne sends a byte through the tunnel's echo target and reads it back.
func echoOne(t *testing.T, c net.Conn) {
	t.Helper()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		t.Fatal(err)
	}
}

// A handed-off TCP connection ends cleanly with the stream: its data,
// then a FIN, and a clean verdict.
func TestHandoffTCPCleanEnd(t *testing.T) {
	r := newHandoffRig(t)
	local, h := r.openTCP(t)
	if _, err := local.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	_ = local.CloseWrite()
	if got, err := io.ReadAll(local); err != nil || string(got) != "ping" {
		t.Fatalf("read %q, %v: want \"ping\" then EOF", got, err)
	}
	waitDone(t, h)
	if err := h.Err(); err != nil {
		t.Fatalf("verdict %v, want a clean end", err)
	}
}

// A cut stream resets the handed-off TCP connection: a FIN would tell its
// client that the part it got was the whole.
func TestHandoffTCPCutResets(t *testing.T) {
	r := newHandoffRig(t)
	local, h := r.openTCP(t)
	echoOne(t, local)
	_ = r.srv.Close() // ends its sessions; resumption is off
	waitDone(t, h)
	var se *StreamError
	if !errors.As(h.Err(), &se) {
		t.Fatalf("verdict %v, want the cut's *StreamError", h.Err())
	}
	_ = h.Close() // the forward has printed it
	if _, err := io.ReadAll(local); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("local client read %v after the cut, want a reset", err)
	}
}

// A forward that stops mid-stream (Abort) has the agent reset the
// connection, not end it.
func TestHandoffTCPAbortResets(t *testing.T) {
	r := newHandoffRig(t)
	local, h := r.openTCP(t)
	echoOne(t, local)
	h.Abort()
	if _, err := io.ReadAll(local); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("local client read %v after the abort, want a reset", err)
	}
}

// A local client's own reset is its end, not the tunnel's: the verdict is
// clean, so the forward prints nothing.
func TestHandoffTCPLocalResetIsQuiet(t *testing.T) {
	r := newHandoffRig(t)
	local, h := r.openTCP(t)
	echoOne(t, local)
	_ = local.SetLinger(0)
	_ = local.Close()
	waitDone(t, h)
	if err := h.Err(); err != nil {
		t.Fatalf("verdict %v after the local client's reset, want none", err)
	}
}
