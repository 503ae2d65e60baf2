package mux

import (
	"io"
	"net"
)

// Guarded is Direct for a connection whose peer must see a reset, not a
// clean end, if this process dies with the connection open (killed, or
// its terminal gone): the kernel closes a dead process's sockets, and a
// plain close sends FIN, which the peer takes for the end of the whole
// data. A TCP connection's linger is 0 (a close sends RST) until Close,
// which restores the default first and so still ends the connection
// cleanly; Abort resets it. Anything else is Direct's.
func Guarded(c net.Conn) io.ReadWriteCloser {
	tcp, ok := c.(*net.TCPConn)
	if !ok || tcp.SetLinger(0) != nil {
		return Direct(c)
	}
	return Direct(guardedTCP{tcp})
}

// guardedTCP is Guarded's connection under Direct.
type guardedTCP struct{ *net.TCPConn }

// Close ends the connection cleanly (FIN, the unsent bytes still sent).
func (g guardedTCP) Close() error {
	_ = g.SetLinger(-1)
	return g.TCPConn.Close()
}

// Abort implements Aborter.
func (g guardedTCP) Abort() {
	_ = g.SetLinger(0)
	_ = g.TCPConn.Close()
}
