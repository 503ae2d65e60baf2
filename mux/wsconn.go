package mux

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// yamux frame layout, needed only to recognise a data header whose body
// follows in the next write.
const (
	yamuxHeaderSize = 12
	yamuxTypeData   = 0
)

// NetConn wraps an accepted or dialed WebSocket as a net.Conn carrying
// binary messages. ctx bounds the connection's whole life: cancel it to tear
// the connection down, never pass a dial-timeout or request context.
//
// yamux writes each data frame's 12-byte header and its body as two writes;
// the returned conn joins them into one WebSocket message, halving the
// messages (and syscalls) per frame. Byte order is unchanged, so this is
// invisible to the peer, which reads a byte stream.
func NetConn(ctx context.Context, c *websocket.Conn) net.Conn { return Link{WS: c}.NetConn(ctx) }

// RawNetConn wraps a WebSocket as a plain byte-stream net.Conn (raw mode,
// where the bytes are not yamux frames). Bytes that arrive together with a
// read error are dropped: coder/websocket returns a frame cut short by a
// dead connection still masked, and passing them on would hand the target
// garbage just before the end.
func RawNetConn(ctx context.Context, c *websocket.Conn) net.Conn {
	return &trustedReads{Conn: websocket.NetConn(ctx, c, websocket.MessageBinary), ws: c}
}

// NetConn is the package's NetConn on l, for yamux alone: with Frames,
// every message is a frame built in place (wsframe.go), header and body
// in one. That saves a client two copies and a masking pass per message.
// A server's v1 sessions pass no Frames: the library writes an unmasked
// payload without copying it, so they would gain nothing.
func (l Link) NetConn(ctx context.Context) net.Conn {
	nc := RawNetConn(ctx, l.WS)
	if l.Frames != nil {
		nc = &framedConn{Conn: nc, frames: l.Frames, client: l.Client}
	}
	return &coalescingConn{Conn: nc}
}

// framedConn writes each message as one frame it builds itself, masked as
// it is copied on a client, and sends through BufConn.WriteFrame; reads,
// Close and everything else are the library's. Its writes bypass the
// library's write deadline and context, so it serves only yamux, which
// sets neither on its connection (raw mode's connection is handed to
// callers that may, and keeps the library's writes).
type framedConn struct {
	net.Conn
	frames *BufConn
	client bool
	mu     sync.Mutex // Write may be called from more than one goroutine
	small  [4 << 10]byte
}

// Write implements net.Conn: p is one message.
func (c *framedConn) Write(p []byte) (int, error) {
	if err := c.writeMessage(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeMessage sends parts, joined, as one binary message.
func (c *framedConn) writeMessage(parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var buf []byte
	switch {
	case frameRoom+n <= len(c.small):
		buf = c.small[:frameRoom+n]
	default:
		buf = getMsg(frameRoom + n)
		defer putMsg(buf)
	}
	start, _ := fillFrame(buf, c.client, parts...)
	return c.frames.WriteFrame(buf[start:])
}

// trustedReads drops the bytes of a Read that also failed, and reports a
// Read or Write ended by its own Close as net.ErrClosed: the library's
// connection cancels the context of a Read in progress when closed, and
// its "context canceled" would read as a failure to a caller that closed
// the connection itself (Splice, which closes both sides when one ends).
type trustedReads struct {
	net.Conn
	ws     *websocket.Conn // for Abort
	closed atomic.Bool
}

// Read implements net.Conn.
func (t *trustedReads) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		n = 0
		if t.closed.Load() {
			err = fmt.Errorf("%w (%w)", net.ErrClosed, err)
		}
	}
	return n, err
}

// Write implements net.Conn.
func (t *trustedReads) Write(p []byte) (int, error) {
	n, err := t.Conn.Write(p)
	if err != nil && t.closed.Load() {
		err = fmt.Errorf("%w (%w)", net.ErrClosed, err)
	}
	return n, err
}

// Close implements net.Conn with the close handshake first, bounded by
// closeHandshakeWait. The library's NetConn cancels its reads' context
// before it starts the handshake, and that cancellation closes the
// socket: now and then the socket closed before the close frame went
// out, so the peer read a deliberate end as a lost connection (about 1
// in 100 v1 sessions closed by their client were logged so by the
// server), and a raw-mode peer took a finished stream for a failed one.
func (t *trustedReads) Close() error {
	t.closed.Store(true)
	done := make(chan error, 1)
	go func() { done <- t.ws.Close(websocket.StatusNormalClosure, "") }()
	timer := time.NewTimer(closeHandshakeWait)
	defer timer.Stop()
	select {
	case err := <-done:
		_ = t.Conn.Close() // its timers; the WebSocket is closed already
		return err
	case <-timer.C:
		// A peer that does not answer (a dead path): the NetConn's
		// close ends the handshake's wait.
		_ = t.Conn.Close()
		return <-done
	}
}

// closeHandshakeWait bounds how long Close waits for the peer's close
// frame: a live peer answers within a round trip, and a dead path must
// not hold the end of a session (and so its redial) for the library's
// own bound, 5 s.
const closeHandshakeWait = time.Second

// Abort implements Aborter: the connection is dropped without a close
// frame, which the peer reads as a failure (a normal close would be the
// clean end of the stream to it).
func (t *trustedReads) Abort() {
	t.closed.Store(true)
	_ = t.ws.CloseNow()
}

// Abort implements Aborter for the connection underneath.
func (c *framedConn) Abort() { abortOnly(c.Conn) }

// Abort implements Aborter for the connection underneath.
func (c *coalescingConn) Abort() { abortOnly(c.Conn) }

// abortOnly aborts c if it can, without closing it (Abort then does).
func abortOnly(c net.Conn) {
	if a, ok := c.(Aborter); ok {
		a.Abort()
	}
}

// coalescingConn holds back a yamux data header until its body arrives.
// yamux's single send loop is its only writer, so no lock is needed.
type coalescingConn struct {
	net.Conn
	hdr     [yamuxHeaderSize]byte
	pending bool
	buf     []byte
}

// Write implements net.Conn.
func (c *coalescingConn) Write(p []byte) (int, error) {
	if c.pending {
		c.pending = false
		if fc, ok := c.Conn.(*framedConn); ok {
			if err := fc.writeMessage(c.hdr[:], p); err != nil {
				return 0, err
			}
			return len(p), nil
		}
		c.buf = append(append(c.buf[:0], c.hdr[:]...), p...)
		if _, err := c.Conn.Write(c.buf); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if len(p) == yamuxHeaderSize && p[1] == yamuxTypeData && binary.BigEndian.Uint32(p[8:]) > 0 {
		copy(c.hdr[:], p)
		c.pending = true
		return len(p), nil
	}
	return c.Conn.Write(p)
}
