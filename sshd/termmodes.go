//go:build unix

package sshd

import "encoding/binary"

// Terminal mode opcodes that are not flags or control characters
// (RFC 4254 section 8).
const (
	ttyOpEnd    = 0
	ttyOpISpeed = 128
	ttyOpOSpeed = 129
	// ttyOpLast is the last opcode with a uint32 argument: the meaning,
	// and so the length, of those after it is not defined, and parsing
	// stops at the first of them, as OpenSSH's does.
	ttyOpLast = 159
)

// termMode is one encoded terminal mode: an opcode and its argument.
type termMode struct {
	op    byte
	value uint32
}

// parseTermModes decodes a pty-req's encoded terminal modes. It stops at
// TTY_OP_END, at an opcode whose argument length is undefined, or at a
// truncated argument, keeping what came before: OpenSSH's server does
// the same, and the client's terminal should be copied as far as it can.
func parseTermModes(b []byte) []termMode {
	var modes []termMode
	for len(b) >= 5 {
		op := b[0]
		if op == ttyOpEnd || op > ttyOpLast {
			break
		}
		modes = append(modes, termMode{op, binary.BigEndian.Uint32(b[1:5])})
		b = b[5:]
	}
	return modes
}
