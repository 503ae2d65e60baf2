package testutil

import (
	"fmt"
	"net"
	"testing"
)

// FreePort returns a loopback TCP port that nothing listens on right now:
// a dial to it is refused, and a server may bind it (unless another takes
// it first, a race the caller must tolerate).
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testutil: finding a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// FreeAddr is FreePort as a "127.0.0.1:PORT" address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", FreePort(t))
}
