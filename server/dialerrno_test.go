package server

import (
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/sandmux/sandmux/mux"
)

// A server on Windows, whose dial errors carry Winsock's codes, tells a
// refused target and an unreachable one as it does elsewhere: the
// client's line then asks whether sshd runs, not about the network.
func TestWinsockDialErrors(t *testing.T) {
	wsa := func(code syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connectex", Err: code}}
	}
	if got := dialStatus(wsa(10061)); got != mux.StatusRefused { // WSAECONNREFUSED
		t.Errorf("WSAECONNREFUSED: status %v, want %v", got, mux.StatusRefused)
	}
	for _, code := range []syscall.Errno{10051, 10065} { // WSAENETUNREACH, WSAEHOSTUNREACH
		if got := dialMessage(wsa(code)); got != "no route to host" {
			t.Errorf("errno %d: %q, want %q", code, got, "no route to host")
		}
	}
}
