package mux

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"

	"github.com/coder/websocket"
)

// A Resumable builds each data message's WebSocket frame itself, in the
// buffer it keeps for replay, and writes it through BufConn.WriteFrame.
// Through coder/websocket a client's message was copied three times (into
// the replay buffer, into the library's 4 KiB write buffer, where it was
// masked in a second pass, and into BufConn's frame) before the write
// syscall; built here it is copied once, masked as it is copied, and
// written from where it lies. On the client the copies and the masking
// pass had been some 40 % of the agent's CPU on an upload.

// Link is one WebSocket a Resumable (or a v1 session, Link.NetConn)
// runs on.
type Link struct {
	// WS is the WebSocket: it reads everything, and writes everything but
	// the data messages when Frames is set.
	WS *websocket.Conn
	// Frames, if not nil, is the BufConn under WS (above TLS). Data
	// messages are then written as frames built in place instead of
	// through WS, which still writes everything else.
	Frames *BufConn
	// Client is set on the side that dialed: RFC 6455 has a client mask
	// every frame it sends.
	Client bool
}

// frameRoom is the space kept before a message for its frame header:
// 2 bytes, an 8-byte extended length and a 4-byte mask key (maxHeader).
const frameRoom = maxHeader

// opBinaryFin is the first header byte of a whole binary message.
const opBinaryFin = 0x80 | 0x2

// opClose is the opcode of a close frame.
const opClose = 0x8

// putFrameHeader writes the header of a whole binary message of n payload
// bytes so that it ends at room[len(room)], and returns where it starts.
// A masked header carries key.
func putFrameHeader(room []byte, n int, masked bool, key [4]byte) int {
	var h [maxHeader]byte
	h[0] = opBinaryFin
	l := 2
	switch {
	case n <= 125:
		h[1] = byte(n)
	case n <= 0xffff:
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
		l += 2
	default:
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
		l += 8
	}
	if masked {
		h[1] |= 0x80
		l += copy(h[l:], key[:])
	}
	start := len(room) - l
	copy(room[start:], h[:l])
	return start
}

// fillFrame copies parts, one after another, into buf[frameRoom:],
// masked with a fresh key if masked, and writes the frame's header in the
// room before them. It returns where the frame starts in buf, and the key.
func fillFrame(buf []byte, masked bool, parts ...[]byte) (start int, key [4]byte) {
	if masked {
		key = newMaskKey()
	}
	pos := frameRoom
	for _, p := range parts {
		if masked {
			maskCopy(buf[pos:], p, key, pos-frameRoom)
		} else {
			copy(buf[pos:], p)
		}
		pos += len(p)
	}
	return putFrameHeader(buf[:frameRoom], pos-frameRoom, masked, key), key
}

// newMaskKey returns a fresh masking key. RFC 6455 §5.3 asks for one from
// a strong source of entropy for every frame, so that a client's payload
// cannot steer the bytes an intermediary sees.
func newMaskKey() [4]byte {
	var k [4]byte
	_, _ = rand.Read(k[:]) // never fails (crypto/rand, Go 1.24+)
	return k
}

// maskCopy sets dst[i] = src[i] ^ key[(pos+i)%4] for every byte of src,
// pos being src[0]'s offset in the frame's payload. dst and src may be the
// same slice (masking in place) but must not otherwise overlap.
func maskCopy(dst, src []byte, key [4]byte, pos int) {
	dst = dst[:len(src)]
	var k [8]byte
	for i := range k {
		k[i] = key[(pos+i)&3]
	}
	k64 := binary.LittleEndian.Uint64(k[:]) // 8 is a multiple of 4: one word fits every offset
	if len(src) >= maskBlock {
		maskCopyLong(dst, src, k64)
		return
	}
	i := 0
	for ; i+32 <= len(src); i += 32 {
		s, d := src[i:i+32], dst[i:i+32]
		binary.LittleEndian.PutUint64(d[0:], binary.LittleEndian.Uint64(s[0:])^k64)
		binary.LittleEndian.PutUint64(d[8:], binary.LittleEndian.Uint64(s[8:])^k64)
		binary.LittleEndian.PutUint64(d[16:], binary.LittleEndian.Uint64(s[16:])^k64)
		binary.LittleEndian.PutUint64(d[24:], binary.LittleEndian.Uint64(s[24:])^k64)
	}
	for ; i+8 <= len(src); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(src[i:])^k64)
	}
	for ; i < len(src); i++ {
		dst[i] = src[i] ^ k[i&7]
	}
}

// maskBlock is the length of the key pattern maskCopyLong XORs with, and
// the shortest message it is used for: filling the pattern costs about
// as much as masking that many bytes, and a multiple of 8 keeps every
// block at src[0]'s key offset.
const maskBlock = 4 << 10

// maskCopyLong masks src into dst with k64 (the key from src[0]'s offset,
// twice) through crypto/subtle.XORBytes, whose assembly moves 16 bytes at
// a time against the word loop's 8 and needs half its instructions: on a
// client's upload this copy was some 80 % of the proxy's instructions
// and 10 % of its CPU samples (bench/PERFORMANCE.md).
func maskCopyLong(dst, src []byte, k64 uint64) {
	var pat [maskBlock]byte
	for i := 0; i < len(pat); i += 8 {
		binary.LittleEndian.PutUint64(pat[i:], k64)
	}
	for len(src) > 0 {
		n := subtle.XORBytes(dst, src, pat[:min(len(src), len(pat))])
		dst, src = dst[n:], src[n:]
	}
}
