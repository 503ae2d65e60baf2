package mux

import "io"

// Aborter is a connection that can end as failed rather than finished:
// Stream sends a reset (RST) where Close would send FIN. A reader takes a
// FIN for the end of the whole data, so a connection cut part-way must
// not end with one.
type Aborter interface {
	Abort()
}

// lingerer is a TCP connection (net.TCPConn): closed after SetLinger(0),
// it sends RST instead of FIN.
type lingerer interface {
	SetLinger(sec int) error
}

// Abort ends c as failed where it can (an Aborter's Abort, a TCP
// connection's RST) and closes it; anything else is just closed.
func Abort(c io.Closer) {
	switch v := c.(type) {
	case Aborter:
		v.Abort()
	case lingerer:
		_ = v.SetLinger(0)
	}
	_ = c.Close()
}
