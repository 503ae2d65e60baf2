package agent

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// socketPeerUID asks the kernel who holds the other end of Unix socket fd
// (getpeerucred(3C), on illumos too): the peer's effective uid.
func socketPeerUID(fd int) (int, error) {
	cred, err := unix.GetPeerUcred(uintptr(fd))
	if err != nil {
		return -1, fmt.Errorf("getpeerucred: %w", err)
	}
	return cred.Geteuid(), nil
}
