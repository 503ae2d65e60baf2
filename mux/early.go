package mux

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// OpenEarly opens a stream and sends req as its header without waiting
// for the reply: the stream is returned at once, writes go out behind the
// header (spec §5.4 lets a client send data right after its request), and
// the first Read consumes the reply. A refusal surfaces there, as a
// *StreamError from Read. Saving the reply's round trip matters because
// SSH's server speaks first: sshd's banner can then travel with the reply.
//
// The reply is awaited for at most twice the header timeout (replyWait);
// ctx bounds only the opening itself.
func (s *Session) OpenEarly(ctx context.Context, req Request) (*EarlyStream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, hdr, err := s.newStream(req)
	if err != nil {
		return nil, err
	}
	_ = st.SetWriteDeadline(time.Now().Add(s.cfg.HeaderTimeout))
	if err := s.sendHeader(st, hdr); err != nil {
		_ = st.Close()
		return nil, err
	}
	_ = st.SetWriteDeadline(time.Time{})
	return &EarlyStream{Stream: st, sess: s}, nil
}

// EarlyStream is a stream whose reply has not been read yet; see OpenEarly.
type EarlyStream struct {
	*Stream
	sess *Session

	once     sync.Once
	replyErr error
	// refusal is replyErr once it is known to be an error, for writers:
	// set before readReply closes the stream, so a write that the close
	// cuts reports the server's reason rather than the close.
	refusal atomic.Pointer[error]
	// closed is set by Close before it sets the read deadline that stops
	// reads, so that readReply, which clears its own deadline, restores
	// one that Close set meanwhile.
	closed atomic.Bool
}

// Close ends both directions (Stream.Close), also while the reply is
// still being read.
func (e *EarlyStream) Close() error {
	e.closed.Store(true)
	return e.Stream.Close()
}

// Read reads the server's reply first, then stream bytes.
func (e *EarlyStream) Read(p []byte) (int, error) {
	e.once.Do(e.readReply)
	if e.replyErr != nil {
		return 0, e.replyErr
	}
	return e.Stream.Read(p)
}

// ReadChunk reads the server's reply first, then lends stream bytes (see
// ChunkReader).
func (e *EarlyStream) ReadChunk() ([]byte, *[]byte, error) {
	e.once.Do(e.readReply)
	if e.replyErr != nil {
		return nil, nil, e.replyErr
	}
	return e.Stream.ReadChunk()
}

func (e *EarlyStream) readReply() {
	_ = e.Stream.SetReadDeadline(time.Now().Add(e.sess.replyWait()))
	rep, err := e.sess.readReply(e.Stream)
	_ = e.Stream.SetReadDeadline(time.Time{})
	if e.closed.Load() {
		_ = e.Stream.SetReadDeadline(time.Now())
	}
	if err == nil {
		err = rep.Err()
	}
	e.replyErr = err
	if err != nil {
		e.refusal.Store(&err)
		_ = e.Stream.Close()
	}
}

// Write sends stream bytes behind the request. Once the server has
// refused the stream, a failing write returns the refusal, as Read does:
// a writer still sending when the reply arrives is told why.
func (e *EarlyStream) Write(p []byte) (int, error) {
	n, err := e.Stream.Write(p)
	if err != nil {
		if r := e.refusal.Load(); r != nil {
			return n, *r
		}
	}
	return n, err
}
