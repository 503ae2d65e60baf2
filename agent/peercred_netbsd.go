package agent

import "fmt"

// localPeerEID is NetBSD's LOCAL_PEEREID (sys/sys/un.h), at socket option
// level 0 (uipc_ctloutput refuses any other), as libc's getpeereid(3)
// asks it; golang.org/x/sys/unix does not define it.
const localPeerEID = 0x3

// socketPeerUID asks the kernel who holds the other end of Unix socket fd:
// the effective uid at connect(2) of a connecting peer, or at bind(2) of a
// listening one.
func socketPeerUID(fd int) (int, error) {
	b, err := getsockoptCred(fd, 0, localPeerEID)
	if err != nil {
		return -1, fmt.Errorf("LOCAL_PEEREID: %w", err)
	}
	return unpcbidUID(b), nil
}
