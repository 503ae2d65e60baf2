//go:build !windows

package agent

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// FdpassSocket reports whether f is a Unix-domain stream socket: what
// ssh with ProxyUseFdpass gives its ProxyCommand as stdin and stdout.
func FdpassSocket(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return false
	}
	raw, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var sa unix.Sockaddr
	var typ int
	var errName, errType error
	if err := raw.Control(func(fd uintptr) {
		sa, errName = unix.Getsockname(int(fd))
		typ, errType = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
	}); err != nil || errName != nil || errType != nil {
		return false
	}
	_, isUnix := sa.(*unix.SockaddrUnix)
	return isUnix && typ == unix.SOCK_STREAM
}

// socketPair makes a connected pair of Unix stream sockets, each
// close-on-exec: the agent this process may start must not inherit them,
// or the stream would not end when the agent and ssh close theirs.
func socketPair() (a, b *os.File, err error) {
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "socketpair"), os.NewFile(uintptr(fds[1]), "socketpair"), nil
}

// passFD sends f's descriptor over the socket sock as ssh's
// mm_receive_fd reads it: one byte of data carrying one SCM_RIGHTS
// descriptor.
func passFD(sock, f *os.File) error {
	raw, err := sock.SyscallConn()
	if err != nil {
		return err
	}
	var sendErr error
	if err := raw.Write(func(s uintptr) bool {
		sendErr = unix.Sendmsg(int(s), []byte{0}, unix.UnixRights(int(f.Fd())), nil, 0)
		return sendErr != unix.EAGAIN
	}); err != nil {
		return err
	}
	if sendErr != nil {
		return fmt.Errorf("sendmsg: %w", sendErr)
	}
	return nil
}
