package conformance

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// A hand-written yamux v0 client (spec §3, §4, §6): just enough to open
// streams, move bytes both ways under the windows, half-close and answer
// pings. It runs on a byteStream, the session byte stream of §2 (v1) or
// §9 (v2).

const (
	typeData   = 0x00
	typeWindow = 0x01
	typePing   = 0x02
	typeGoAway = 0x03

	flagSYN = 0x0001
	flagACK = 0x0002
	flagFIN = 0x0004
	flagRST = 0x0008

	initialWindow = 256 << 10 // §4: fixed by yamux
	ourWindow     = 512 << 10 // §4: granted by the opening window update
	maxFrameBody  = 64 << 10  // §4: the largest frame a v1 sender sends
)

// byteStream is one direction pair of session bytes: Read yields the
// peer's bytes in order, WriteFrame sends one frame (as one message).
type byteStream interface {
	Read(p []byte) (int, error)
	WriteFrame(p []byte) error
	Close() error
}

type frameHeader struct {
	Version uint8
	Type    uint8
	Flags   uint16
	Stream  uint32
	Length  uint32
}

func (h frameHeader) bytes() []byte {
	b := make([]byte, 12)
	b[0] = h.Version
	b[1] = h.Type
	binary.BigEndian.PutUint16(b[2:], h.Flags)
	binary.BigEndian.PutUint32(b[4:], h.Stream)
	binary.BigEndian.PutUint32(b[8:], h.Length)
	return b
}

func parseFrameHeader(b []byte) frameHeader {
	return frameHeader{
		Version: b[0],
		Type:    b[1],
		Flags:   binary.BigEndian.Uint16(b[2:]),
		Stream:  binary.BigEndian.Uint32(b[4:]),
		Length:  binary.BigEndian.Uint32(b[8:]),
	}
}

// frame is one frame the server sent, kept for the tests that check the
// wire trace of §5.6.
type frame struct {
	frameHeader
	Body []byte
}

var errStreamReset = errors.New("stream reset by the server")

type miniSession struct {
	bs   byteStream
	wmu  sync.Mutex // one frame at a time on the byte stream
	done chan struct{}

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change below
	streams map[uint32]*miniStream
	next    uint32
	frames  []frame
	pongs   []uint32
	err     error // why the reader stopped
	goAway  bool
	opened  []uint32 // streams the server tried to open (§3: never)
	mute    bool     // answer no pings, as a peer whose path froze
	// accept, when set, makes this the server's end: streams the client
	// opens are acknowledged and handed over here.
	accept chan *miniStream
}

type miniStream struct {
	s  *miniSession
	id uint32
	// guarded by s.mu
	in     []byte
	acked  bool
	fin    bool
	rst    bool
	window uint32 // what we may still send
}

func newMiniSession(bs byteStream) *miniSession {
	return startMiniSession(bs, nil)
}

// newServerSession is the server's end: it takes the streams the client
// opens (odd ids, §3) and opens none.
func newServerSession(bs byteStream) *miniSession {
	return startMiniSession(bs, make(chan *miniStream, 64))
}

func startMiniSession(bs byteStream, accept chan *miniStream) *miniSession {
	s := &miniSession{
		bs:      bs,
		done:    make(chan struct{}),
		changed: make(chan struct{}),
		streams: map[uint32]*miniStream{},
		next:    1, // §3: the client opens odd ids
		accept:  accept,
	}
	go s.readLoop()
	return s
}

// Close ends the byte stream and waits for the reader.
func (s *miniSession) Close() error {
	err := s.bs.Close()
	<-s.done
	return err
}

func (s *miniSession) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor blocks until cond (called under s.mu) holds or ctx ends.
func (s *miniSession) waitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		if cond() {
			s.mu.Unlock()
			return nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *miniSession) writeFrame(h frameHeader, body []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.bs.WriteFrame(append(h.bytes(), body...))
}

func (s *miniSession) readLoop() {
	defer close(s.done)
	err := s.read()
	s.mu.Lock()
	s.err = err
	s.broadcastLocked()
	s.mu.Unlock()
}

func (s *miniSession) read() error {
	hb := make([]byte, 12)
	for {
		if _, err := io.ReadFull(s.bs, hb); err != nil {
			return err
		}
		h := parseFrameHeader(hb)
		if h.Version != 0 {
			return fmt.Errorf("yamux version %d", h.Version)
		}
		var body []byte
		if h.Type == typeData && h.Length > 0 {
			body = make([]byte, h.Length)
			if _, err := io.ReadFull(s.bs, body); err != nil {
				return err
			}
		}
		s.mu.Lock()
		mute := s.mute
		s.mu.Unlock()
		if h.Type == typePing && h.Flags&flagSYN != 0 && !mute {
			if err := s.writeFrame(frameHeader{Type: typePing, Flags: flagACK, Length: h.Length}, nil); err != nil {
				return err
			}
		}
		s.mu.Lock()
		s.frames = append(s.frames, frame{h, body})
		switch h.Type {
		case typeData, typeWindow:
			st := s.streams[h.Stream]
			if st == nil && h.Flags&flagSYN != 0 && s.accept != nil && h.Stream%2 == 1 {
				st = &miniStream{s: s, id: h.Stream, window: initialWindow}
				s.streams[st.id] = st
				select {
				case s.accept <- st:
				default:
					s.mu.Unlock()
					return fmt.Errorf("accept backlog full")
				}
				ack := frameHeader{Type: typeWindow, Flags: flagACK, Stream: st.id, Length: ourWindow - initialWindow}
				s.mu.Unlock()
				if err := s.writeFrame(ack, nil); err != nil {
					return err
				}
				s.mu.Lock()
			}
			if st == nil {
				if h.Flags&flagSYN != 0 {
					s.opened = append(s.opened, h.Stream)
				}
				break // a stream we closed, or one the server must not open (§3)
			}
			if h.Flags&flagACK != 0 {
				st.acked = true
			}
			if h.Type == typeWindow {
				st.window += h.Length
			} else {
				st.in = append(st.in, body...)
			}
			if h.Flags&flagFIN != 0 {
				st.fin = true
			}
			if h.Flags&flagRST != 0 {
				st.rst = true
			}
		case typePing:
			if h.Flags&flagACK != 0 {
				s.pongs = append(s.pongs, h.Length)
			}
		case typeGoAway:
			s.goAway = true
		default:
			s.mu.Unlock()
			return fmt.Errorf("yamux frame type %d", h.Type)
		}
		s.broadcastLocked()
		s.mu.Unlock()
	}
}

// framesOf returns the frames the server sent on stream id so far.
func (s *miniSession) framesOf(id uint32) []frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []frame
	for _, f := range s.frames {
		if f.Stream == id {
			out = append(out, f)
		}
	}
	return out
}

// openBare opens a stream and sends no request.
func (s *miniSession) openBare() (*miniStream, error) {
	s.mu.Lock()
	st := &miniStream{s: s, id: s.next, window: initialWindow}
	s.next += 2
	s.streams[st.id] = st
	s.mu.Unlock()
	return st, s.writeFrame(frameHeader{Type: typeWindow, Flags: flagSYN, Stream: st.id, Length: ourWindow - initialWindow}, nil)
}

// open opens a stream the way §5.6 shows: a window update with SYN that
// grants the 512 KiB window, then the request as the first data.
func (s *miniSession) open(req []byte) (*miniStream, error) {
	st, err := s.openBare()
	if err != nil {
		return nil, err
	}
	return st, st.write(context.Background(), req)
}

// ping sends a ping with value v and waits for its pong.
func (s *miniSession) ping(ctx context.Context, v uint32) error {
	if err := s.writeFrame(frameHeader{Type: typePing, Flags: flagSYN, Length: v}, nil); err != nil {
		return err
	}
	return s.waitFor(ctx, func() bool {
		for _, p := range s.pongs {
			if p == v {
				return true
			}
		}
		return s.err != nil
	})
}

// write sends p in frames of at most 64 KiB within the server's window.
func (st *miniStream) write(ctx context.Context, p []byte) error {
	s := st.s
	for len(p) > 0 {
		var n uint32
		err := s.waitFor(ctx, func() bool { return st.window > 0 || st.rst || s.err != nil })
		if err != nil {
			return err
		}
		s.mu.Lock()
		if st.rst || s.err != nil {
			s.mu.Unlock()
			return fmt.Errorf("write on stream %d: reset or session ended (%v)", st.id, s.err)
		}
		n = min(st.window, uint32(len(p)), maxFrameBody)
		st.window -= n
		s.mu.Unlock()
		if err := s.writeFrame(frameHeader{Type: typeData, Stream: st.id, Length: n}, p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// closeWrite half-closes (§6): FIN on a window update of length 0.
func (st *miniStream) closeWrite() error {
	return st.s.writeFrame(frameHeader{Type: typeWindow, Flags: flagFIN, Stream: st.id}, nil)
}

// reset sends RST.
func (st *miniStream) reset() error {
	return st.s.writeFrame(frameHeader{Type: typeWindow, Flags: flagRST, Stream: st.id}, nil)
}

// read returns what arrived, io.EOF after the server's FIN once all is
// read, errStreamReset after its RST.
func (st *miniStream) read(ctx context.Context, p []byte) (int, error) {
	s := st.s
	if err := s.waitFor(ctx, func() bool { return len(st.in) > 0 || st.fin || st.rst || s.err != nil }); err != nil {
		return 0, err
	}
	s.mu.Lock()
	n := copy(p, st.in)
	st.in = st.in[n:]
	fin, rst, serr := st.fin, st.rst, s.err
	s.mu.Unlock()
	switch {
	case n > 0:
		if !fin && !rst {
			// Give back what we consumed, so the window stays 512 KiB.
			if err := s.writeFrame(frameHeader{Type: typeWindow, Stream: st.id, Length: uint32(n)}, nil); err != nil {
				return n, err
			}
		}
		return n, nil
	case rst:
		return 0, errStreamReset
	case fin:
		return 0, io.EOF
	default:
		return 0, fmt.Errorf("session ended: %w", serr)
	}
}

// readFull reads exactly len(p) bytes.
func (st *miniStream) readFull(ctx context.Context, p []byte) error {
	for off := 0; off < len(p); {
		n, err := st.read(ctx, p[off:])
		off += n
		if err != nil && off < len(p) {
			return fmt.Errorf("after %d of %d bytes: %w", off, len(p), err)
		}
	}
	return nil
}

// readAll reads until the server's FIN (nil) or RST or session end.
func (st *miniStream) readAll(ctx context.Context) ([]byte, error) {
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := st.read(ctx, buf)
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// streamReader adapts a stream to io.Reader for the header parser.
type streamReader struct {
	ctx context.Context
	st  *miniStream
}

func (r streamReader) Read(p []byte) (int, error) { return r.st.read(r.ctx, p) }
