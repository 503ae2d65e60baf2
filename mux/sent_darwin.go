package mux

import "golang.org/x/sys/unix"

// unacked is how many bytes socket fd holds that its peer has not
// acknowledged: SO_NWRITE is the size of the send buffer, which TCP keeps
// until they are acknowledged (a Unix socket's stays empty, a pipe has
// none). macOS resets a TCP connection closed with unread bytes as Linux
// does (tcp_disconnect drops it), throwing away what was not sent yet.
func unacked(fd int) int {
	n, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_NWRITE)
	if err != nil {
		return 0
	}
	return n
}
