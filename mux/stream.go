package mux

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hashicorp/yamux"
)

// Stream is one multiplexed connection. It splits writes into frames
// sized to the path and gives yamux's half-close the CloseWrite name that
// Splice and net.TCPConn use.
type Stream struct {
	*yamux.Stream
	sess *Session
}

// Read implements net.Conn. yamux ends a stream with a clean EOF also
// when it was cut (its session died, or the close timeout fired); only an
// EOF after the peer's FIN is reported as EOF, so a cut is never mistaken
// for the end of the data, and data that did end is never reported as cut
// because the session ended after it.
func (s *Stream) Read(b []byte) (int, error) {
	n, err := s.Stream.Read(b)
	return n, s.endErr(err)
}

// ReadChunk is Read without the copy (see ChunkReader), ending the same
// way.
func (s *Stream) ReadChunk() ([]byte, *[]byte, error) {
	b, token, err := s.Stream.ReadChunk()
	return b, token, s.endErr(err)
}

// endErr maps an EOF without the peer's FIN to the cut that caused it,
// and yamux's bare errors for a session that ended (see sessionErr).
func (s *Stream) endErr(err error) error {
	if err != io.EOF {
		return s.sessionErr("read stream", err)
	}
	if s.Stream.RemoteFinished() {
		return err
	}
	if s.sess.IsClosed() {
		return s.sess.wrapErr("read stream", ErrSessionEnded)
	}
	return s.sess.wrapErr("read stream", ErrCloseTimeout)
}

// sessionErr words an error caused by the session's end as that end
// (lost, silent, not resumed), which yamux reports only as "session
// shutdown", as "stream closed" for a stream the end closed, or as the
// connection's own write error to the stream whose frame it failed.
func (s *Stream) sessionErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, yamux.ErrSessionShutdown) ||
		s.sess.IsClosed() && (errors.Is(err, yamux.ErrStreamClosed) || errors.Is(err, yamux.ErrConnectionReset)) {
		return s.sess.wrapErr(op, ErrSessionEnded)
	}
	if sendFailed(err) {
		// This stream's frame (data, or the window update after a Read)
		// was the one the connection failed to send, as the session
		// ends: the cause is the session's, as for its other streams.
		return s.sess.wrapErr(op, err)
	}
	if errors.Is(err, yamux.ErrConnectionReset) {
		return fmt.Errorf("%s: %w", op, ErrStreamReset)
	}
	return err
}

// finishedStream marks a Stream (and EarlyStream) for closeFinished: a
// reset after its FIN costs its peer's reads nothing (yamux patch).
func (s *Stream) finishedStream() {}

var (
	_ net.Conn    = (*Stream)(nil)
	_ ChunkReader = (*Stream)(nil)
)

// Write splits b into frames (Session.frameSize), so one large write
// cannot hold the session's send queue for the length of its transfer.
// On a detached session it also asks for a prompt redial (Resumable.Want):
// a keystroke into a session waiting to resume is someone waiting on it.
func (s *Stream) Write(b []byte) (int, error) {
	s.sess.want()
	total := 0
	for len(b) > 0 {
		chunk := b
		if max := s.sess.frameSize(); len(chunk) > max {
			chunk = chunk[:max]
		}
		n, err := s.Stream.Write(chunk)
		total += n
		if err != nil {
			return total, s.sessionErr("write stream", err)
		}
		b = b[n:]
	}
	return total, nil
}

// CloseWrite sends FIN: the peer reads EOF, while this side keeps reading
// until the peer closes too. (yamux's Close is exactly this half-close.)
func (s *Stream) CloseWrite() error {
	return s.Stream.Close()
}

// Close ends both directions: it sends FIN and stops local reads at once,
// so a splice blocked in Read returns instead of waiting for the peer.
func (s *Stream) Close() error {
	err := s.Stream.Close()
	_ = s.Stream.SetReadDeadline(time.Now())
	return err
}
