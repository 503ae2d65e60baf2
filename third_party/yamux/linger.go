package yamux

import "time"

// sandmux patch: a closing session lets its peer read what it sent.
//
// Close closed the connection at once. On TCP, closing a socket that
// still holds received bytes nobody read (the peer's window updates and
// pings, which the receive loop had not got to yet) sends a reset instead
// of a FIN, and the kernel drops what it had not sent yet: the end of the
// data that Writes and the streams' FINs had already reported sent. The
// peer read a connection reset in the middle of a frame, and a stream
// finished before the Close ended truncated, without its FIN (upstream's
// TestHalfCloseSessionShutdown, about one run in five). So a Close asked
// for (not a session ending on an error) on a connection that can
// half-close, as TCP, TLS and Unix sockets can, first waits for the send
// loop to stop, half-closes the connection, which queues a FIN (TLS: a
// close_notify) after everything sent, and lets the receive loop read on
// until the peer closes in turn, as any yamux peer does when it reads the
// end of the connection. Both waits together take at most
// ConnectionWriteTimeout: a peer that does not close by then (or a send
// loop stuck in a write to a peer that stopped reading) is cut as before.
// A connection without CloseWrite (sandmux's transports, which close
// with a handshake of their own) is closed at once, as upstream does.

// closeWriter is a connection that can close its sending side alone.
type closeWriter interface {
	CloseWrite() error
}

// linger half-closes the connection and waits, within the write timeout,
// for the peer to close its side (see the top of this file). The caller
// has closed shutdownCh, so the send loop is ending.
func (s *Session) linger() {
	cw, ok := s.conn.(closeWriter)
	if !ok {
		return
	}
	timer := time.NewTimer(s.config.ConnectionWriteTimeout)
	defer timer.Stop()
	select {
	case <-s.sendDoneCh: // no write can be under way: the FIN follows them
	case <-timer.C:
		return
	}
	if cw.CloseWrite() != nil {
		return
	}
	select {
	case <-s.recvDoneCh:
	case <-timer.C:
	}
}
