//go:build darwin || freebsd

package agent

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// socketPeerUID asks the kernel who holds the other end of Unix socket fd.
func socketPeerUID(fd int) (int, error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return -1, fmt.Errorf("LOCAL_PEERCRED: %w", err)
	}
	return int(cred.Uid), nil
}
