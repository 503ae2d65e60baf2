//go:build linux || darwin

package mux

import (
	"io"
	"syscall"
	"time"
)

// sendStall is how long a finished TCP side's send queue may stay still
// before closeFinished gives up waiting for it.
const sendStall = 10 * time.Second

// awaitSent waits until what c, a TCP socket (through Direct and Watch;
// MPTCP too, which Go's listeners accept by default, and whose close with
// unread bytes is a reset as well), was given to send has been
// acknowledged (unacked), for as long as its peer keeps taking it
// (sendStall); anything else returns at once.
func awaitSent(c io.Closer) {
	sc, ok := unwatched(c).(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	outq := func() (n int) {
		if rc.Control(func(fd uintptr) { n = unacked(int(fd)) }) != nil {
			return 0
		}
		return n
	}
	last, moved := outq(), time.Now()
	for wait := time.Millisecond; last > 0 && time.Since(moved) < sendStall; wait = min(2*wait, 50*time.Millisecond) {
		time.Sleep(wait)
		if n := outq(); n < last {
			last, moved = n, time.Now()
		}
	}
}
