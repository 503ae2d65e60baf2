package mux

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"
)

// transport counts the bytes a session moves and remembers when it last
// received any, which is how the session judges liveness: under bulk load a
// ping may queue behind data, but any byte received proves the path works.
type transport struct {
	net.Conn
	epoch    time.Time
	in, out  atomic.Int64
	lastRead atomic.Int64 // nanoseconds since epoch
	// peerClosed: the peer closed the connection on purpose (noteEnd),
	// not a broken connection.
	peerClosed atomic.Bool
}

func newTransport(c net.Conn) *transport {
	return &transport{Conn: c, epoch: time.Now()}
}

// Read implements net.Conn.
func (t *transport) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	if n > 0 {
		t.in.Add(int64(n))
		t.lastRead.Store(int64(time.Since(t.epoch)))
	}
	t.noteEnd(err)
	return n, err
}

// noteEnd records whether err is the peer's close: io.EOF from a read
// (the WebSocket connection's word for the peer's close frame), or any
// error carrying the close frame's normal status, which a write finds
// when the peer's close arrived first.
func (t *transport) noteEnd(err error) {
	if err == nil {
		return
	}
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		t.peerClosed.Store(true)
		return
	}
	if err == io.EOF {
		t.peerClosed.Store(true)
	}
}

// Write implements net.Conn. Its error is marked as the connection's
// (sendError): yamux ends the session on it, but first hands it as it is
// to the stream whose frame failed.
func (t *transport) Write(p []byte) (int, error) {
	n, err := t.Conn.Write(p)
	t.out.Add(int64(n))
	if err != nil {
		t.noteEnd(err)
		err = &sendError{err}
	}
	return n, err
}

// sendError is a write error of a session's connection, which ends the
// session.
type sendError struct{ err error }

func (e *sendError) Error() string { return e.err.Error() }

func (e *sendError) Unwrap() error { return e.err }

// sendFailed reports whether err is the session's connection failing to
// send (sendError).
func sendFailed(err error) bool {
	var se *sendError
	return errors.As(err, &se)
}

// silence is how long ago the last byte arrived (or the session started).
func (t *transport) silence() time.Duration {
	return time.Since(t.epoch) - time.Duration(t.lastRead.Load())
}

// forYamux returns t as yamux should see it: with the send gate of the
// connection under it, if it has one (Resumable: see room.go).
func (t *transport) forYamux() io.ReadWriteCloser {
	if g, ok := t.Conn.(yamux.SendGate); ok {
		return gatedTransport{t, g}
	}
	return t
}

// gatedTransport is a transport that passes its connection's SendGate on.
type gatedTransport struct {
	*transport
	gate yamux.SendGate
}

// Room implements yamux.SendGate.
func (g gatedTransport) Room(n int) bool { return g.gate.Room(n) }

// RoomChanged implements yamux.SendGate.
func (g gatedTransport) RoomChanged() <-chan struct{} { return g.gate.RoomChanged() }
