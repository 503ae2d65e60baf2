//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly || solaris

package agent

import "net"

// peerUID returns the uid of the process at the other end of c.
func peerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	uid, cerr := -1, error(nil)
	if err := raw.Control(func(fd uintptr) { uid, cerr = socketPeerUID(int(fd)) }); err != nil {
		return -1, err
	}
	return uid, cerr
}
