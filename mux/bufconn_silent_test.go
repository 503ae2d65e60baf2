package mux

import (
	"io"
	"net"
	"testing"
)

// Silent tells a peer that hung up (closed or reset) without a byte, as a
// busy server does, from one that said something first: the client's
// "closed before any answer" line rests on it, whatever error net/http
// made of the close.
func TestBufConnSilent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tt := range []struct {
		name  string
		serve func(c *net.TCPConn)
		want  bool
	}{
		{"closed", func(c *net.TCPConn) { _ = c.Close() }, true},
		{"reset", func(c *net.TCPConn) { _ = c.SetLinger(0); _ = c.Close() }, true},
		{"answered, then closed", func(c *net.TCPConn) { _, _ = c.Write([]byte("HTTP/1.1 503")); _ = c.Close() }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			tt.serve(s.(*net.TCPConn))
			bc := NewBufConn(c)
			defer bc.Close()
			if bc.Silent() {
				t.Fatal("silent before any read")
			}
			_, _ = io.ReadAll(bc)
			if got := bc.Silent(); got != tt.want {
				t.Fatalf("Silent() = %v, want %v", got, tt.want)
			}
		})
	}
}
