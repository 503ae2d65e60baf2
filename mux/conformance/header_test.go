package conformance

import (
	"encoding/binary"
	"fmt"
	"io"
	"unicode/utf8"
)

// The stream header of spec §5, written from the spec.

const (
	tagTarget  = 0x01
	tagMessage = 0x02
	tagLimit   = 0x03
)

type tlv struct {
	tag   byte
	value []byte
}

// header encodes version, kind and the fields in order (empty values are
// written too: the caller decides).
func header(version, kind byte, fields ...tlv) []byte {
	var body []byte
	for _, f := range fields {
		body = append(body, f.tag)
		body = binary.BigEndian.AppendUint16(body, uint16(len(f.value)))
		body = append(body, f.value...)
	}
	out := []byte{version, kind}
	out = binary.BigEndian.AppendUint16(out, uint16(len(body)))
	return append(out, body...)
}

// request is a v1 request for target ("" for the default target: §5.1
// says writers omit empty fields).
func request(target string) []byte {
	if target == "" {
		return header(1, 0)
	}
	return header(1, 0, tlv{tagTarget, []byte(target)})
}

type reply struct {
	Status  byte
	Target  string
	Message string
	Limit   string
	Raw     []byte
}

// readReply reads exactly one header from r, applying §5.1's rules.
func readReply(r io.Reader) (reply, error) {
	pre := make([]byte, 4)
	if _, err := io.ReadFull(r, pre); err != nil {
		return reply{}, fmt.Errorf("reply prefix: %w", err)
	}
	if pre[0] != 1 {
		return reply{}, fmt.Errorf("reply version %d", pre[0])
	}
	n := int(binary.BigEndian.Uint16(pre[2:]))
	if 4+n > 4096 {
		return reply{}, fmt.Errorf("reply of %d bytes is over 4096", 4+n)
	}
	fields := make([]byte, n)
	if _, err := io.ReadFull(r, fields); err != nil {
		return reply{}, fmt.Errorf("reply fields: %w", err)
	}
	rep := reply{Status: pre[1], Raw: append(pre, fields...)}
	seen := map[byte]bool{}
	for len(fields) > 0 {
		if len(fields) < 3 {
			return rep, fmt.Errorf("malformed reply: %d bytes left for a 3-byte entry prefix", len(fields))
		}
		tag, l := fields[0], int(binary.BigEndian.Uint16(fields[1:]))
		if 3+l > len(fields) {
			return rep, fmt.Errorf("malformed reply: tag %d value runs past the fields", tag)
		}
		v := fields[3 : 3+l]
		fields = fields[3+l:]
		if tag != tagTarget && tag != tagMessage && tag != tagLimit {
			continue
		}
		if seen[tag] {
			return rep, fmt.Errorf("malformed reply: tag %d twice", tag)
		}
		seen[tag] = true
		if !utf8.Valid(v) {
			return rep, fmt.Errorf("malformed reply: tag %d not UTF-8", tag)
		}
		switch tag {
		case tagTarget:
			rep.Target = string(v)
		case tagMessage:
			rep.Message = string(v)
		default:
			rep.Limit = string(v)
		}
	}
	return rep, nil
}
