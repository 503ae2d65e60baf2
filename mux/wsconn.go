package mux

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"

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
func NetConn(ctx context.Context, c *websocket.Conn) net.Conn {
	return &coalescingConn{Conn: RawNetConn(ctx, c)}
}

// RawNetConn wraps a WebSocket as a plain byte-stream net.Conn (raw mode,
// where the bytes are not yamux frames). Bytes that arrive together with a
// read error are dropped: coder/websocket returns a frame cut short by a
// dead connection still masked, and passing them on would hand the target
// garbage just before the end.
func RawNetConn(ctx context.Context, c *websocket.Conn) net.Conn {
	return trustedReads{websocket.NetConn(ctx, c, websocket.MessageBinary)}
}

// trustedReads drops the bytes of a Read that also failed.
type trustedReads struct{ net.Conn }

// Read implements net.Conn.
func (t trustedReads) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		n = 0
	}
	return n, err
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
