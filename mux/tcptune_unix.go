//go:build linux || darwin

package mux

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// notSentLowat bounds the bytes a socket holds that the kernel has not yet
// sent. Without it, bulk data fills megabytes of send buffer and a
// keystroke or a pong written after it waits for all of it; with it, the
// backlog stays in yamux, where every stream gets its turn.
const notSentLowat = 128 << 10

// TuneTCP applies notSentLowat to c if it is a TCP connection. Failure is
// harmless (older kernels), so it is ignored.
func TuneTCP(c net.Conn) {
	if _, ok := c.(*net.TCPConn); !ok {
		return
	}
	withFD(c, func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, notSentLowat)
	})
}

// withFD runs f on v's descriptor, if v has one (SyscallConn); tuning is
// best effort, so having none is not an error.
func withFD(v any, f func(fd uintptr)) {
	sc, ok := v.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return
	}
	if raw, err := sc.SyscallConn(); err == nil {
		_ = raw.Control(f)
	}
}
