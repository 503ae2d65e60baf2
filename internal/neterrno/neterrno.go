// Package neterrno matches a network error with an errno on every
// platform. Go's network errors on Windows carry Winsock's codes
// (WSAECONNRESET is syscall.Errno(10054)), which errors.Is never matches
// with the syscall package's Unix-named values: on Windows those are
// numbers the package invented, so a reset or an aborted connection was
// worded there in the library's text instead of sandmux's few words.
package neterrno

import (
	"errors"
	"syscall"
)

// winsock maps the Unix-named errnos sandmux words to Winsock's codes
// for the same failure (winerror.h). No Unix errno is as large, so the
// codes are matched on every platform, where a test can make them.
var winsock = map[syscall.Errno]syscall.Errno{
	syscall.ENETDOWN:     10050, // WSAENETDOWN
	syscall.ENETUNREACH:  10051, // WSAENETUNREACH
	syscall.ECONNABORTED: 10053, // WSAECONNABORTED
	syscall.ECONNRESET:   10054, // WSAECONNRESET
	syscall.ECONNREFUSED: 10061, // WSAECONNREFUSED
	syscall.EHOSTUNREACH: 10065, // WSAEHOSTUNREACH
}

// Is reports whether err is target, or Winsock's code for target.
func Is(err error, target syscall.Errno) bool {
	if errors.Is(err, target) {
		return true
	}
	wsa, ok := winsock[target]
	return ok && errors.Is(err, wsa)
}
