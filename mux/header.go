package mux

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// HeaderVersion is the version byte that starts every stream header and
// reply. A peer answers a version it does not know with StatusBadRequest.
const HeaderVersion = 1

// MaxHeaderSize bounds a whole header (prefix and fields), so a peer cannot
// make the other side buffer more than this before a stream is admitted.
const MaxHeaderSize = 4096

// headerPrefixLen is version, kind/status, and the 16-bit fields length.
const headerPrefixLen = 4

// Field tags. Unknown tags are skipped so that later versions can add
// fields (stream ids and resume offsets are reserved) without breaking
// older peers.
const (
	tagTarget  = 0x01
	tagMessage = 0x02
	tagLimit   = 0x03
)

// Status is the first answer of a server to a stream header.
type Status uint8

// Reply statuses. The numbers are on the wire; never renumber them.
const (
	StatusOK          Status = 0 // the target is connected; stream bytes follow
	StatusNotAllowed  Status = 1 // the target is not on the server's allowlist
	StatusRefused     Status = 2 // the target refused the TCP connection
	StatusUnreachable Status = 3 // the target could not be reached (DNS, timeout, route)
	StatusBadRequest  Status = 4 // the header could not be parsed
	StatusLimit       Status = 5 // a server limit (streams, sessions) was hit
	StatusInternal    Status = 6 // anything else on the server side
)

// String names a status for logs.
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusNotAllowed:
		return "not allowed"
	case StatusRefused:
		return "refused"
	case StatusUnreachable:
		return "unreachable"
	case StatusBadRequest:
		return "bad request"
	case StatusLimit:
		return "limit"
	case StatusInternal:
		return "internal error"
	}
	return fmt.Sprintf("status %d", uint8(s))
}

// Limit names which of a server's limits refused a stream (StatusLimit),
// so that a client knows whether another session might carry it.
type Limit string

// The limits a reply names. A server older than the field names none.
const (
	// LimitSession is the session's own (--max-streams): another session
	// may have room.
	LimitSession Limit = "session"
	// LimitServer is the server's across all sessions
	// (--max-total-streams): no other session has room either.
	LimitServer Limit = "server"
)

// Request is the header a client writes first on every stream.
type Request struct {
	// Target is "host:port" to connect to inside the sandbox; empty asks
	// for the server's default target.
	Target string
}

// Reply is the server's answer to a Request.
type Reply struct {
	Status Status
	// Target is the target the server resolved the request to (the default
	// target when the request named none), so errors can name it.
	Target string
	// Message is human-readable detail for a non-OK status.
	Message string
	// Limit names the limit that refused the stream, with StatusLimit;
	// empty from a server older than the field.
	Limit Limit
}

// field is one tag-length-value entry.
type field struct {
	tag   byte
	value string
}

// encodeFrame lays out version, kind, and the fields behind a 16-bit length.
func encodeFrame(kind byte, fields []field) ([]byte, error) {
	n := headerPrefixLen
	for _, f := range fields {
		n += 3 + len(f.value)
	}
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrHeaderTooLarge, n, MaxHeaderSize)
	}
	b := make([]byte, headerPrefixLen, n)
	b[0] = HeaderVersion
	b[1] = kind
	binary.BigEndian.PutUint16(b[2:], uint16(n-headerPrefixLen))
	for _, f := range fields {
		b = append(b, f.tag)
		b = binary.BigEndian.AppendUint16(b, uint16(len(f.value)))
		b = append(b, f.value...)
	}
	return b, nil
}

// readFrame reads one header frame and returns its kind byte and fields.
// It reads exactly the frame's bytes, so stream data behind it is untouched.
func readFrame(r io.Reader) (byte, []field, error) {
	var prefix [headerPrefixLen]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return 0, nil, fmt.Errorf("read stream header: %w", err)
	}
	if prefix[0] != HeaderVersion {
		return 0, nil, fmt.Errorf("%w: %d (this build speaks %d)", ErrHeaderVersion, prefix[0], HeaderVersion)
	}
	size := int(binary.BigEndian.Uint16(prefix[2:]))
	if size > MaxHeaderSize-headerPrefixLen {
		return 0, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrHeaderTooLarge, size+headerPrefixLen, MaxHeaderSize)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, fmt.Errorf("read stream header: %w", err)
	}
	fields, err := parseFields(body)
	return prefix[1], fields, err
}

// parseFields splits a frame body into its tag-length-value fields.
func parseFields(b []byte) ([]field, error) {
	var out []field
	for len(b) > 0 {
		if len(b) < 3 {
			return nil, fmt.Errorf("%w: truncated field", ErrHeaderMalformed)
		}
		tag, n := b[0], int(binary.BigEndian.Uint16(b[1:3]))
		b = b[3:]
		if n > len(b) {
			return nil, fmt.Errorf("%w: field %d claims %d bytes, %d left", ErrHeaderMalformed, tag, n, len(b))
		}
		out = append(out, field{tag: tag, value: string(b[:n])})
		b = b[n:]
	}
	return out, nil
}

// textField returns the value of tag, rejecting duplicates and non-UTF-8,
// since these strings end up in logs and on users' terminals.
func textField(fields []field, tag byte) (string, error) {
	var v string
	seen := false
	for _, f := range fields {
		if f.tag != tag {
			continue
		}
		if seen {
			return "", fmt.Errorf("%w: field %d repeated", ErrHeaderMalformed, tag)
		}
		if !utf8.ValidString(f.value) {
			return "", fmt.Errorf("%w: field %d is not UTF-8", ErrHeaderMalformed, tag)
		}
		v, seen = f.value, true
	}
	return v, nil
}

// MarshalBinary encodes the request header.
func (r Request) MarshalBinary() ([]byte, error) {
	var fields []field
	if r.Target != "" {
		fields = append(fields, field{tagTarget, r.Target})
	}
	return encodeFrame(0, fields)
}

// ReadRequest reads one request header from r.
func ReadRequest(r io.Reader) (Request, error) {
	kind, fields, err := readFrame(r)
	if err != nil {
		return Request{}, err
	}
	if kind != 0 {
		return Request{}, fmt.Errorf("%w: request flags %#x are not defined", ErrHeaderMalformed, kind)
	}
	target, err := textField(fields, tagTarget)
	return Request{Target: target}, err
}

// MarshalBinary encodes the reply header.
func (r Reply) MarshalBinary() ([]byte, error) {
	var fields []field
	if r.Target != "" {
		fields = append(fields, field{tagTarget, r.Target})
	}
	if r.Message != "" {
		fields = append(fields, field{tagMessage, r.Message})
	}
	if r.Limit != "" {
		fields = append(fields, field{tagLimit, string(r.Limit)})
	}
	return encodeFrame(byte(r.Status), fields)
}

// ReadReply reads one reply header from r.
func ReadReply(r io.Reader) (Reply, error) {
	kind, fields, err := readFrame(r)
	if err != nil {
		return Reply{}, err
	}
	rep := Reply{Status: Status(kind)}
	if rep.Target, err = textField(fields, tagTarget); err != nil {
		return Reply{}, err
	}
	if rep.Message, err = textField(fields, tagMessage); err != nil {
		return Reply{}, err
	}
	limit, err := textField(fields, tagLimit)
	if err != nil {
		return Reply{}, err
	}
	rep.Limit = Limit(limit)
	// Both end up on the user's terminal (ssh shows ProxyCommand's
	// stderr): a hostile server must not send it escape sequences.
	rep.Target, rep.Message = printableText(rep.Target), printableText(rep.Message)
	return rep, nil
}

// printableText shows the control characters in s, words from the peer
// bound for a terminal, as \xNN escapes: shown, not dropped, so that a
// target refused for one ("127.0.0.1:22\x00") does not read as the
// target without it.
func printableText(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) { // C0 and C1: all below 0x100
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Err returns nil for StatusOK and a *StreamError otherwise.
func (r Reply) Err() error {
	if r.Status == StatusOK {
		return nil
	}
	return &StreamError{Status: r.Status, Target: r.Target, Message: r.Message, Limit: r.Limit}
}

// StreamError is a server's refusal of one stream. Its text is the line a
// user sees, with a hint at what to change.
type StreamError struct {
	Status  Status
	Target  string
	Message string
	Limit   Limit // which limit, with StatusLimit (Reply.Limit)
}

// SessionLimit reports whether the stream was refused for a limit of its
// session's own, which another session might not have reached: the
// server said so, or said nothing, as one older than Reply.Limit does
// for either limit (a session of its own is then tried, as before). A
// limit named otherwise is taken as not the session's.
func (e *StreamError) SessionLimit() bool {
	return e.Status == StatusLimit && (e.Limit == "" || e.Limit == LimitSession)
}

// Error renders the refusal for a terminal.
func (e *StreamError) Error() string {
	switch e.Status {
	case StatusNotAllowed:
		if !isHostPort(e.Target) {
			return fmt.Sprintf("server refused target %s: not allowed (not HOST:PORT)", e.Target)
		}
		// Said as what to do: "(server --allow)" left a user who had
		// never started the server to guess which end and which flag.
		return fmt.Sprintf("server refused target %s: not allowed (%s)", e.Target, AllowHint(e.Target))
	case StatusRefused:
		hint := "is the service listening?"
		if port := portOf(e.Target); port == "22" {
			hint = "is sshd running?"
		}
		return fmt.Sprintf("%s refused the connection inside the sandbox (%s)", e.Target, hint)
	case StatusUnreachable:
		return fmt.Sprintf("cannot reach %s inside the sandbox: %s", e.Target, e.Message)
	case StatusLimit:
		return e.Message
	case StatusBadRequest:
		return fmt.Sprintf("server rejected the stream header: %s (are client and server versions compatible?)", e.Message)
	}
	if e.Target == "" {
		return "server could not open a stream: " + e.Message
	}
	return fmt.Sprintf("server could not open a stream to %s: %s", e.Target, e.Message)
}

// AllowHint is what to do about a target the server does not allow: the
// flag to give it, named where it runs.
func AllowHint(target string) string {
	return "add --allow " + target + " to `sandmux server` in the sandbox"
}

// isHostPort reports whether s reads as HOST:PORT with a port from 1 to
// 65535: one the server's --allow could name.
func isHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	p, err := strconv.ParseUint(port, 10, 16)
	return err == nil && p > 0
}

// portOf returns the port of a "host:port" string, or "".
func portOf(hostport string) string {
	for i := len(hostport) - 1; i >= 0; i-- {
		if hostport[i] == ':' {
			return hostport[i+1:]
		}
	}
	return ""
}
