package agent

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// socketPeerUID asks the kernel who holds the other end of Unix socket fd:
// the effective uid at connect(2) of a connecting peer, or at bind(2) of a
// listening one.
func socketPeerUID(fd int) (int, error) {
	b, err := getsockoptCred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return -1, fmt.Errorf("SO_PEERCRED: %w", err)
	}
	return sockpeercredUID(b), nil
}
