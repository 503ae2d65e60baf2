package mux_test

import (
	"errors"
	"io"
	"net"
	"testing"

	"github.com/sandmux/sandmux/mux"
)

// halfConn is a connection that can half-close.
type halfConn struct{ net.Conn }

func (halfConn) CloseWrite() error { return nil }

// Watch tells its caller of read and write errors, but not of those after
// its own Close, and keeps half-close only where the connection has it.
func TestWatch(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	var told []error
	w := mux.Watch(halfConn{a}, func(err error) { told = append(told, err) })
	if _, ok := w.(interface{ CloseWrite() error }); !ok {
		t.Fatal("a connection that half-closes lost CloseWrite")
	}
	go func() { _, _ = b.Write([]byte("x")); _ = b.Close() }()
	if _, err := io.ReadAll(w); err != nil {
		t.Fatal(err)
	}
	if len(told) != 1 || !errors.Is(told[0], io.EOF) {
		t.Fatalf("told %v, want the EOF", told)
	}
	_ = w.Close()
	_, _ = w.Write([]byte("y")) // fails: closed by the caller
	if len(told) != 1 {
		t.Fatalf("told %v after Close, want nothing more", told[1:])
	}
	c, d := net.Pipe()
	defer c.Close()
	defer d.Close()
	if _, ok := mux.Watch(c, func(error) {}).(interface{ CloseWrite() error }); ok {
		t.Fatal("a connection that cannot half-close gained CloseWrite")
	}
}
