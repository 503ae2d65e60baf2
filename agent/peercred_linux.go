package agent

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// socketPeerUID asks the kernel who holds the other end of Unix socket fd.
func socketPeerUID(fd int) (int, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return -1, fmt.Errorf("SO_PEERCRED: %w", err)
	}
	return int(cred.Uid), nil
}
