package agent

import "fmt"

// localPeerCred is DragonFly's LOCAL_PEERCRED (sys/sys/un.h), at socket
// option level 0, as libc's getpeereid(3) asks it; golang.org/x/sys/unix
// does not define it for DragonFly.
const localPeerCred = 0x1

// socketPeerUID asks the kernel who holds the other end of Unix socket fd:
// the effective uid at connect(2) of a connecting peer, or at listen(2) of
// a listening one.
func socketPeerUID(fd int) (int, error) {
	b, err := getsockoptCred(fd, 0, localPeerCred)
	if err != nil {
		return -1, fmt.Errorf("LOCAL_PEERCRED: %w", err)
	}
	return xucredUID(b)
}
