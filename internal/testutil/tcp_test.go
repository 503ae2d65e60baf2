package testutil

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// dialServer connects to s, bounded so a broken server fails the test
// instead of hanging it.
func dialServer(t *testing.T, s *Server) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c.(*net.TCPConn)
}

func TestEchoServer(t *testing.T) {
	s := EchoServer(t)
	c := dialServer(t, s)
	msg := bytes.Repeat([]byte("echo "), 100_000)
	go func() {
		_, _ = c.Write(msg)
		_ = c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read the echo: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echoed %d bytes, want the %d sent", len(got), len(msg))
	}
}

// TestCloseEndsHeldConnections: a handler blocked on a peer that never
// closes does not keep Close waiting.
func TestCloseEndsHeldConnections(t *testing.T) {
	started := make(chan struct{})
	s := Serve(t, func(c net.Conn) {
		close(started)
		_, _ = io.Copy(io.Discard, c)
	})
	c := dialServer(t, s)
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not start")
	}
	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited on a connection its peer keeps open")
	}
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a closed server, want an error", n)
	}
	s.Close() // again: a no-op
	if _, err := net.DialTimeout("tcp", s.Addr, 10*time.Second); err == nil {
		t.Fatal("a closed server still accepts")
	}
}

func TestFreePort(t *testing.T) {
	addr := FreeAddr(t)
	if c, err := net.DialTimeout("tcp", addr, 10*time.Second); err == nil {
		_ = c.Close()
		t.Fatalf("%s accepted a connection, want it refused", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("%s cannot be bound: %v", addr, err)
	}
	_ = ln.Close()
}

func TestSourceServer(t *testing.T) {
	c := dialServer(t, SourceServer(t))
	got := make([]byte, 1<<20)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read a MiB: %v", err)
	}
	if !bytes.Equal(got, make([]byte, len(got))) {
		t.Fatal("the source sent bytes that are not zeros")
	}
}
