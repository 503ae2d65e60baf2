//go:build openbsd || netbsd || dragonfly || linux

package agent

import "golang.org/x/sys/unix"

// getsockoptCred reads socket option (level, opt) of fd into 20 bytes and
// returns the first 16, for OpenBSD's, NetBSD's and DragonFly's peer
// credentials, which golang.org/x/sys/unix has no getter for.
//
// GetsockoptIPv6Mreq is x/sys's own getsockopt(2) into a zeroed struct
// ipv6_mreq of 20 bytes whose first 16 are a plain byte array: nothing in
// it is interpreted as an address, it is only the buffer. It is used
// rather than a raw unix.Syscall6(SYS_GETSOCKOPT) because OpenBSD 7.5 and
// later allow system calls only through libc, where x/sys's getsockopt
// goes and Syscall6 fails with ENOSYS. Each of those kernels copies
// min(buffer, struct) bytes and succeeds (OpenBSD and NetBSD
// sys_getsockopt in uipc_syscalls.c, DragonFly soopt_from_kbuf): the
// 12-byte sockpeercred and unpcbid arrive whole, and of DragonFly's larger
// xucred the first 20 bytes, which hold the two fields read. x/sys
// discards the length the kernel returns, so a shorter answer would leave
// zeros; none of these kernels gives one.
//
// Linux is listed only so that the test can run this on a real kernel
// (its struct ucred is {pid, uid, gid}, NetBSD's field order).
func getsockoptCred(fd, level, opt int) (credBytes, error) {
	m, err := unix.GetsockoptIPv6Mreq(fd, level, opt)
	if err != nil {
		return credBytes{}, err
	}
	return m.Multiaddr, nil
}
