package agent

import (
	"encoding/binary"
	"fmt"
)

// Where the peer's uid is in the credential structs getsockoptCred reads.
// Every field read is 32 bits (uid_t, pid_t, u_int on all three systems),
// in the host's byte order, and the structs have no padding before them;
// the layouts are the systems' headers, quoted at each function. These
// are here, not in per-system files, so that they are tested on Linux.

// credBytes is the start of a credential struct as the kernel wrote it
// for a getsockopt(2) on a Unix socket (getsockoptCred).
type credBytes [16]byte

// sockpeercredUID is the uid in OpenBSD's SO_PEERCRED answer,
// sys/sys/socket.h:
//
//	struct sockpeercred { uid_t uid; gid_t gid; pid_t pid; };
func sockpeercredUID(b credBytes) int { return credField(b, 0) }

// unpcbidUID is the effective uid in NetBSD's LOCAL_PEEREID answer,
// sys/sys/un.h:
//
//	struct unpcbid { pid_t unp_pid; uid_t unp_euid; gid_t unp_egid; };
func unpcbidUID(b credBytes) int { return credField(b, 4) }

// xucredUID is the effective uid in DragonFly's LOCAL_PEERCRED answer,
// sys/sys/ucred.h, of which only the first two fields are read:
//
//	struct xucred { u_int cr_version; uid_t cr_uid; short cr_ngroups; ... };
//	#define XUCRED_VERSION 0
//
// Another version is another layout: refused, as libc's getpeereid does.
func xucredUID(b credBytes) (int, error) {
	if v := binary.NativeEndian.Uint32(b[0:]); v != 0 {
		return -1, fmt.Errorf("LOCAL_PEERCRED: struct xucred version %d, not 0", v)
	}
	return credField(b, 4), nil
}

// credField is the 32-bit unsigned field at off, as an int the way
// os.Getuid gives a uid (so uids past 1<<31 compare equal on 32-bit
// systems too).
func credField(b credBytes, off int) int { return int(binary.NativeEndian.Uint32(b[off:])) }
