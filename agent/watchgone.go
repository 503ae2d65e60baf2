package agent

import (
	"errors"
	"net"
	"os"
	"time"
)

// watchGone calls left if the proxy on c goes away (closes its end) while
// the agent finds it a stream: a proxy sends nothing between its request
// and the reply, so anything c reads then means it has gone, as when ssh's
// ConnectTimeout ran out and ssh hung up on it. Without this the agent
// counted it as waiting, and dialled for it, for the rest of its
// --connect-timeout. stop ends the watch, which it waits for, and reports
// whether the proxy went away; c is then as before (no deadline).
func watchGone(c *net.UnixConn, left func()) (stop func() bool) {
	done := make(chan bool, 1)
	go func() {
		var b [1]byte
		_, err := c.Read(b[:])
		gone := !errors.Is(err, os.ErrDeadlineExceeded)
		if gone {
			left()
		}
		done <- gone
	}()
	return func() bool {
		_ = c.SetReadDeadline(time.Now())
		gone := <-done
		_ = c.SetReadDeadline(time.Time{})
		return gone
	}
}
