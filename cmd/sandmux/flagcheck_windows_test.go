package main

import (
	"net"
	"strings"
	"testing"
)

// Go's network errors on Windows are Winsock codes, which the syscall
// package's EADDRINUSE never matched: a -L port already in use was told
// to be spelt another way.
func TestListenErrorInUseWindows(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	_, err = net.Listen("tcp", addr)
	if err == nil {
		t.Skip("the second listener was allowed")
	}
	if got := listenError("L", addr, "127.0.0.1:8080", err).Error(); !strings.Contains(got, "is in use") {
		t.Fatalf("listenError = %q, want it to say the port is in use", got)
	}
}
