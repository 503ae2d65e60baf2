package mux

import "golang.org/x/sys/unix"

// unacked is how many bytes TCP socket fd holds that its peer has not
// acknowledged, its FIN included; 0 for anything but TCP or MPTCP.
func unacked(fd int) int {
	if p, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil || p != unix.IPPROTO_TCP && p != unix.IPPROTO_MPTCP {
		return 0
	}
	n, _ := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
	return n
}
