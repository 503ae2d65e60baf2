package neterrno

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
)

// A Winsock code, wrapped as Go's net package wraps it on Windows,
// matches its Unix-named errno on every platform; other errors do not.
func TestIsMatchesWinsockCodes(t *testing.T) {
	wrap := func(e syscall.Errno) error {
		return &net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "wsarecv", Err: e}}
	}
	for _, c := range []struct {
		code   syscall.Errno
		target syscall.Errno
	}{
		{10050, syscall.ENETDOWN},
		{10051, syscall.ENETUNREACH},
		{10053, syscall.ECONNABORTED},
		{10054, syscall.ECONNRESET},
		{10061, syscall.ECONNREFUSED},
		{10065, syscall.EHOSTUNREACH},
	} {
		if !Is(wrap(c.code), c.target) {
			t.Errorf("Is(%d, %v) = false", c.code, c.target)
		}
		if !Is(wrap(c.target), c.target) {
			t.Errorf("Is(%v, %v) = false", c.target, c.target)
		}
		if Is(wrap(c.code), syscall.EPIPE) || Is(errors.New("other"), c.target) {
			t.Errorf("%d matched what it is not", c.code)
		}
	}
}
