package mux

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/sandmux/sandmux/internal/neterrno"
)

// BufConn sits under a WebSocket library to cut syscalls. coder/websocket
// masks each frame's payload on the client through a 4 KiB write buffer,
// so a 32 KiB frame costs about eight write() calls. Once Framing is on,
// BufConn holds written bytes until a whole WebSocket frame has been
// written and sends it in one write. It never delays a frame: a frame is
// flushed the moment its last byte arrives.
//
// Reads pass straight through. The library reads frame headers through
// its own 4 KiB buffer and a payload straight into its reader's slice,
// which for a yamux data frame is the stream's receive chunk, so the
// kernel copies a payload where it stays; a read buffer here copied
// every payload byte once more.
//
// Framing must be switched on only after the HTTP upgrade (the request
// and response are not frames), and BufConn must sit above TLS, where the
// bytes are frames, not records.
type BufConn struct {
	net.Conn

	mu      sync.Mutex // the WebSocket library writes from one goroutine at a time, but Close may race
	between *sync.Cond // signalled when a frame is finished (or writing stops): WriteFrame waits for it
	framing bool
	buf     []byte // bytes of the frame being assembled
	need    int    // bytes still missing from the current frame; -1 = header incomplete
	// vec: the connection takes net.Buffers in one writev, so the write
	// that completes a frame is sent from the caller's slice instead of
	// being copied behind what is held. An unmasked frame's payload
	// (the server's) mostly arrives that way, in one large write after
	// the library's first 4 KiB.
	vec bool
	// stop ends WriteFrame's writes: a failed write (a frame may be cut
	// off mid-way, so nothing may follow it), the library's close frame
	// (RFC 6455: no data after it), or Close.
	stop error
	// werr is the failed write, after which the library's writes are
	// refused too.
	werr error

	// raw, for a TCP connection on Linux, reads and writes with raw
	// system calls (see Direct).
	raw *rawIO

	// head holds the first bytes read (Head), until headFull.
	headMu   sync.Mutex
	head     []byte
	headFull atomic.Bool
	headEOF  bool // the peer closed (or reset) the connection before headFull
}

// headSize is how many of the peer's first bytes Head keeps: enough for
// an SSH banner's first line to name what answered.
const headSize = 64

// vecMin is the smallest tail worth a writev instead of a copy.
const vecMin = 16 << 10

// maxHold caps how much BufConn holds before writing anyway, for frames
// larger than any sandmux writes.
const maxHold = 256 << 10

// NewBufConn wraps c.
func NewBufConn(c net.Conn) *BufConn {
	_, vec := c.(*net.TCPConn)
	b := &BufConn{Conn: c, need: -1, vec: vec}
	if vec {
		b.raw = newRawIO(c)
	}
	b.between = sync.NewCond(&b.mu)
	return b
}

// Framing switches write coalescing on. Call it after the upgrade, before
// the first frame.
func (b *BufConn) Framing() {
	b.mu.Lock()
	b.framing = true
	b.mu.Unlock()
}

// Write implements net.Conn.
func (b *BufConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.framing {
		return b.Conn.Write(p)
	}
	if b.werr != nil {
		return 0, b.werr
	}
	n := len(p)
	for len(p) > 0 {
		if b.need < 0 {
			// Take exactly the header's bytes: 2, then the rest it announces.
			want := 2
			if len(b.buf) >= 2 {
				want = frameHeaderLen(b.buf)
			}
			take := min(len(p), want-len(b.buf))
			b.buf = append(b.buf, p[:take]...)
			p = p[take:]
			if len(b.buf) < 2 || len(b.buf) < frameHeaderLen(b.buf) {
				continue
			}
			b.need = framePayloadLen(b.buf)
			if b.buf[0]&0x0f == opClose && b.stop == nil {
				b.stop = net.ErrClosed
			}
		}
		take := min(len(p), b.need)
		if b.vec && take == b.need && take >= vecMin {
			bufs := net.Buffers{b.buf, p[:take]}
			_, err := b.write(bufs...)
			b.buf, b.need, p = b.buf[:0], -1, p[take:]
			if err != nil {
				return 0, b.failed(err)
			}
			b.between.Broadcast()
			continue
		}
		b.buf = append(b.buf, p[:take]...)
		p = p[take:]
		b.need -= take
		if b.need == 0 || len(b.buf) >= maxHold {
			if err := b.flush(); err != nil {
				return 0, b.failed(err)
			}
		}
	}
	return n, nil
}

// flush writes what is held; a finished frame starts the next header.
func (b *BufConn) flush() error {
	_, err := b.write(b.buf)
	b.buf = b.buf[:0]
	if b.need == 0 {
		b.need = -1
		b.between.Broadcast()
	}
	return err
}

// failed records a write error, after which no frame may follow, and
// returns it.
func (b *BufConn) failed(err error) error {
	if b.stop == nil {
		b.stop = err
	}
	if b.werr == nil {
		b.werr = err
	}
	b.between.Broadcast()
	return err
}

// atBoundary reports whether no frame of the library's is part-written.
func (b *BufConn) atBoundary() bool { return b.need < 0 && len(b.buf) == 0 }

// WriteFrame writes frame, one whole WebSocket frame built by the caller
// (see wsframe.go), between the library's own frames: if the library is
// part-way through one (a pong, say), it waits for its end. It fails once
// the library has sent its close frame, after a failed write and after
// Close, and before Framing.
func (b *BufConn) WriteFrame(frame []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.stop == nil && b.framing && !b.atBoundary() {
		b.between.Wait()
	}
	if b.stop != nil {
		return b.stop
	}
	if !b.framing {
		return errNotFraming
	}
	if _, err := b.write(frame); err != nil {
		return b.failed(err)
	}
	return nil
}

// errNotFraming: WriteFrame before the upgrade finished (Framing).
var errNotFraming = errors.New("websocket frame written before the upgrade finished")

// Close implements net.Conn; it also ends WriteFrame's wait. The socket
// is closed before mu is taken: a write blocked on a peer that stopped
// reading holds mu, and only the close ends it.
func (b *BufConn) Close() error {
	err := b.Conn.Close()
	b.mu.Lock()
	if b.stop == nil {
		b.stop = net.ErrClosed
	}
	b.between.Broadcast()
	b.mu.Unlock()
	return err
}

// maxHeader is the longest WebSocket frame header: 2 + 8 length + 4 mask.
const maxHeader = 14

// frameHeaderLen is the length of the header whose first two bytes are
// b[:2]: the base, the extended length, and the mask key.
func frameHeaderLen(b []byte) int {
	hl := 2
	switch b[1] & 0x7f {
	case 126:
		hl += 2
	case 127:
		hl += 8
	}
	if b[1]&0x80 != 0 {
		hl += 4
	}
	return hl
}

// framePayloadLen is the payload length announced by a complete header.
func framePayloadLen(b []byte) int {
	switch pl := int(b[1] & 0x7f); pl {
	case 126:
		return int(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		return int(binary.BigEndian.Uint64(b[2:10]) & (1<<62 - 1))
	default:
		return pl
	}
}

// WrapConn prepares a freshly dialed or accepted connection that will
// carry a WebSocket: it tunes the TCP socket and returns the BufConn to
// put under the WebSocket library (and to switch to Framing after the
// upgrade).
func WrapConn(c net.Conn) *BufConn {
	TuneTCP(c)
	return NewBufConn(c)
}

// Listener wraps every accepted connection with WrapConn. Pair it with
// an http.Server whose ConnContext is ConnContext, so the handler can
// switch the connection to Framing after the upgrade.
type Listener struct{ net.Listener }

// Accept implements net.Listener.
func (l Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return WrapConn(c), nil
}

type bufConnKey struct{}

// ConnContext stores the connection in the request context, for
// http.Server.ConnContext; BufConnFrom finds it again.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if bc, ok := c.(*BufConn); ok {
		return context.WithValue(ctx, bufConnKey{}, bc)
	}
	return ctx
}

// BufConnFrom returns the request's BufConn, or nil when the server was
// not set up with Listener and ConnContext.
func BufConnFrom(ctx context.Context) *BufConn {
	bc, _ := ctx.Value(bufConnKey{}).(*BufConn)
	return bc
}

// write sends bufs in one writev where it can.
func (b *BufConn) write(bufs ...[]byte) (int, error) {
	if b.raw != nil {
		return b.raw.writev(bufs...)
	}
	nb := net.Buffers(bufs)
	n, err := nb.WriteTo(b.Conn)
	return int(n), err
}

// Read implements net.Conn.
func (b *BufConn) Read(p []byte) (n int, err error) {
	if b.raw != nil {
		n, err = b.raw.read(p)
	} else {
		n, err = b.Conn.Read(p)
	}
	if n > 0 && !b.headFull.Load() {
		b.headMu.Lock()
		b.head = append(b.head, p[:min(n, headSize-len(b.head))]...)
		b.headFull.Store(len(b.head) == headSize)
		b.headMu.Unlock()
	}
	if (errors.Is(err, io.EOF) || neterrno.Is(err, syscall.ECONNRESET)) && !b.headFull.Load() {
		b.headMu.Lock()
		b.headEOF = true
		b.headMu.Unlock()
	}
	return n, err
}

// Silent reports whether the peer closed the connection without sending
// a byte (a reset too: a server that closes with the request unread
// resets it): a client whose upgrade failed tells by it a server that hung up
// unanswered (a busy one) whatever error its HTTP library made of that.
func (b *BufConn) Silent() bool {
	b.headMu.Lock()
	defer b.headMu.Unlock()
	return b.headEOF && len(b.head) == 0
}

// Head returns the first bytes the peer sent (up to 64): a client whose
// upgrade failed tells by them an answer that is not HTTP at all (an SSH
// banner: the URL names the wrong port) from a broken connection.
func (b *BufConn) Head() []byte {
	b.headMu.Lock()
	defer b.headMu.Unlock()
	return append([]byte(nil), b.head...)
}
