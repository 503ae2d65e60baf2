package neterrno

import (
	"syscall"
	"testing"

	"golang.org/x/sys/windows"
)

// The codes written out by number are Windows's own.
func TestWinsockCodes(t *testing.T) {
	for unix, want := range map[syscall.Errno]syscall.Errno{
		syscall.ENETDOWN:     windows.WSAENETDOWN,
		syscall.ENETUNREACH:  windows.WSAENETUNREACH,
		syscall.ECONNABORTED: windows.WSAECONNABORTED,
		syscall.ECONNRESET:   windows.WSAECONNRESET,
		syscall.ECONNREFUSED: windows.WSAECONNREFUSED,
		syscall.EHOSTUNREACH: windows.WSAEHOSTUNREACH,
	} {
		if got := winsock[unix]; got != want {
			t.Errorf("%v: %d, want %d", unix, got, want)
		}
	}
}
