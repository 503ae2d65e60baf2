package mux_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/sandmux/sandmux/mux"
)

// frame builds a raw header: version, kind, then the given fields body
// behind its 16-bit length.
func frame(version, kind byte, body []byte) []byte {
	b := []byte{version, kind}
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

// tlv builds one tag-length-value field.
func tlv(tag byte, value string) []byte {
	b := []byte{tag}
	b = binary.BigEndian.AppendUint16(b, uint16(len(value)))
	return append(b, value...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestRequestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		req  mux.Request
		want []byte // exact encoding
	}{
		{"default target", mux.Request{}, []byte{1, 0, 0, 0}},
		{"ipv4 target", mux.Request{Target: "127.0.0.1:22"}, frame(1, 0, tlv(0x01, "127.0.0.1:22"))},
		{"ipv6 target", mux.Request{Target: "[::1]:2222"}, frame(1, 0, tlv(0x01, "[::1]:2222"))},
		{"utf-8 name", mux.Request{Target: "bücher.example:443"}, frame(1, 0, tlv(0x01, "bücher.example:443"))},
		{"largest", mux.Request{Target: strings.Repeat("a", mux.MaxHeaderSize-7)}, frame(1, 0, tlv(0x01, strings.Repeat("a", mux.MaxHeaderSize-7)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.req.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			if !bytes.Equal(b, tt.want) {
				t.Fatalf("MarshalBinary = % x\nwant            % x", b, tt.want)
			}
			got, err := mux.ReadRequest(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("ReadRequest: %v", err)
			}
			if got != tt.req {
				t.Fatalf("ReadRequest = %+v, want %+v", got, tt.req)
			}
			// A reader that hands out one byte at a time must work too.
			got, err = mux.ReadRequest(iotest.OneByteReader(bytes.NewReader(b)))
			if err != nil || got != tt.req {
				t.Fatalf("ReadRequest(one byte at a time) = %+v, %v", got, err)
			}
		})
	}
}

func TestReplyRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rep  mux.Reply
		want []byte
	}{
		{"ok bare", mux.Reply{Status: mux.StatusOK}, []byte{1, 0, 0, 0}},
		{"ok with target", mux.Reply{Status: mux.StatusOK, Target: "127.0.0.1:22"}, frame(1, 0, tlv(0x01, "127.0.0.1:22"))},
		{"refused with message", mux.Reply{Status: mux.StatusRefused, Target: "127.0.0.1:22", Message: "connection refused"},
			frame(1, 2, cat(tlv(0x01, "127.0.0.1:22"), tlv(0x02, "connection refused")))},
		{"message only", mux.Reply{Status: mux.StatusLimit, Message: "too many streams"}, frame(1, 5, tlv(0x02, "too many streams"))},
		{"limit named", mux.Reply{Status: mux.StatusLimit, Message: "full", Limit: mux.LimitServer},
			frame(1, 5, cat(tlv(0x02, "full"), tlv(0x03, "server")))},
		{"unknown status survives", mux.Reply{Status: 200, Message: "from the future"}, frame(1, 200, tlv(0x02, "from the future"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.rep.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			if !bytes.Equal(b, tt.want) {
				t.Fatalf("MarshalBinary = % x\nwant            % x", b, tt.want)
			}
			got, err := mux.ReadReply(iotest.OneByteReader(bytes.NewReader(b)))
			if err != nil {
				t.Fatalf("ReadReply: %v", err)
			}
			if got != tt.rep {
				t.Fatalf("ReadReply = %+v, want %+v", got, tt.rep)
			}
		})
	}
}

func TestMarshalTooLarge(t *testing.T) {
	tests := []struct {
		name string
		enc  func() ([]byte, error)
	}{
		{"request one byte over", mux.Request{Target: strings.Repeat("a", mux.MaxHeaderSize-6)}.MarshalBinary},
		{"request beyond 16 bits", mux.Request{Target: strings.Repeat("a", 70000)}.MarshalBinary},
		{"reply fields together over", mux.Reply{Target: strings.Repeat("t", 2048), Message: strings.Repeat("m", 2048)}.MarshalBinary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.enc()
			if !errors.Is(err, mux.ErrHeaderTooLarge) {
				t.Fatalf("MarshalBinary = %d bytes, %v; want ErrHeaderTooLarge", len(b), err)
			}
		})
	}
}

func TestReadRequestMalformed(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{"empty input", nil, io.EOF},
		{"truncated prefix", []byte{1, 0, 0}, io.ErrUnexpectedEOF},
		{"truncated body", frame(1, 0, tlv(0x01, "127.0.0.1:22"))[:10], io.ErrUnexpectedEOF},
		{"version 0", frame(0, 0, nil), mux.ErrHeaderVersion},
		{"version 2", frame(2, 0, tlv(0x01, "127.0.0.1:22")), mux.ErrHeaderVersion},
		{"version 0xff", []byte{0xff, 0xff, 0xff, 0xff}, mux.ErrHeaderVersion},
		{"oversized length", []byte{1, 0, 0x0f, 0xfd}, mux.ErrHeaderTooLarge},
		{"max length field", []byte{1, 0, 0xff, 0xff}, mux.ErrHeaderTooLarge},
		{"truncated field header", frame(1, 0, []byte{0x01, 0x00}), mux.ErrHeaderMalformed},
		{"field longer than body", frame(1, 0, []byte{0x01, 0x00, 0x05, 'a', 'b'}), mux.ErrHeaderMalformed},
		{"trailing partial field", frame(1, 0, cat(tlv(0x01, "a:1"), []byte{0x7f})), mux.ErrHeaderMalformed},
		{"repeated target", frame(1, 0, cat(tlv(0x01, "a:1"), tlv(0x01, "b:2"))), mux.ErrHeaderMalformed},
		{"repeated empty target", frame(1, 0, cat(tlv(0x01, ""), tlv(0x01, ""))), mux.ErrHeaderMalformed},
		{"non-utf-8 target", frame(1, 0, tlv(0x01, "\xff\xfe:22")), mux.ErrHeaderMalformed},
		{"request flags set", frame(1, 1, tlv(0x01, "a:1")), mux.ErrHeaderMalformed},
		{"request flags high bit", frame(1, 0x80, nil), mux.ErrHeaderMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mux.ReadRequest(bytes.NewReader(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadRequest = %+v, %v; want %v", got, err, tt.wantErr)
			}
			if got != (mux.Request{}) {
				t.Fatalf("ReadRequest returned %+v with its error, want the zero Request", got)
			}
		})
	}
}

func TestReadReplyMalformed(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{"empty input", nil, io.EOF},
		{"truncated body", frame(1, 2, tlv(0x02, "connection refused"))[:8], io.ErrUnexpectedEOF},
		{"version 2", frame(2, 0, nil), mux.ErrHeaderVersion},
		{"oversized length", []byte{1, 0, 0x10, 0x00}, mux.ErrHeaderTooLarge},
		{"truncated field", frame(1, 0, []byte{0x02}), mux.ErrHeaderMalformed},
		{"repeated message", frame(1, 3, cat(tlv(0x02, "x"), tlv(0x02, "y"))), mux.ErrHeaderMalformed},
		{"repeated target", frame(1, 3, cat(tlv(0x01, "x:1"), tlv(0x02, "m"), tlv(0x01, "x:1"))), mux.ErrHeaderMalformed},
		{"non-utf-8 message", frame(1, 3, tlv(0x02, "bad \xc3\x28")), mux.ErrHeaderMalformed},
		{"non-utf-8 target", frame(1, 0, tlv(0x01, "\x80")), mux.ErrHeaderMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mux.ReadReply(bytes.NewReader(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadReply = %+v, %v; want %v", got, err, tt.wantErr)
			}
			if got != (mux.Reply{}) {
				t.Fatalf("ReadReply returned %+v with its error, want the zero Reply", got)
			}
		})
	}
}

// TestUnknownTagsSkipped: fields a later version adds (stream id, resume
// offsets) must not break this one, wherever they appear and however often.
func TestUnknownTagsSkipped(t *testing.T) {
	tests := []struct {
		name    string
		body    []byte
		kind    byte
		wantReq mux.Request
		wantRep mux.Reply
	}{
		{"unknown before", cat(tlv(0x05, "\x00\x00\x00\x07"), tlv(0x01, "h:1")), 0,
			mux.Request{Target: "h:1"}, mux.Reply{Target: "h:1"}},
		{"unknown after", cat(tlv(0x01, "h:1"), tlv(0xff, "xyz")), 0,
			mux.Request{Target: "h:1"}, mux.Reply{Target: "h:1"}},
		{"unknown repeated and binary", cat(tlv(0x04, "\xff\xff"), tlv(0x04, "\x00"), tlv(0x01, "h:1"), tlv(0x04, "")), 0,
			mux.Request{Target: "h:1"}, mux.Reply{Target: "h:1"}},
		{"only unknown", tlv(0x10, "future"), 0, mux.Request{}, mux.Reply{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := frame(1, tt.kind, tt.body)
			req, err := mux.ReadRequest(bytes.NewReader(b))
			if err != nil || req != tt.wantReq {
				t.Fatalf("ReadRequest = %+v, %v; want %+v", req, err, tt.wantReq)
			}
			rep, err := mux.ReadReply(bytes.NewReader(b))
			if err != nil || rep != tt.wantRep {
				t.Fatalf("ReadReply = %+v, %v; want %+v", rep, err, tt.wantRep)
			}
		})
	}
}

// TestReadLeavesStreamData: the header reader must consume exactly the
// header, since stream data follows it on the same stream.
func TestReadLeavesStreamData(t *testing.T) {
	const after = "SSH-2.0-OpenSSH_9.6\r\n"
	tests := []struct {
		name string
		hdr  []byte
		read func(io.Reader) error
	}{
		{"request", mustMarshal(t, mux.Request{Target: "127.0.0.1:22"}), func(r io.Reader) error { _, err := mux.ReadRequest(r); return err }},
		{"empty request", mustMarshal(t, mux.Request{}), func(r io.Reader) error { _, err := mux.ReadRequest(r); return err }},
		{"request with unknown field", frame(1, 0, cat(tlv(0x01, "a:1"), tlv(0x09, "zz"))), func(r io.Reader) error { _, err := mux.ReadRequest(r); return err }},
		{"reply", mustMarshal(t, mux.Reply{Target: "127.0.0.1:22"}), func(r io.Reader) error { _, err := mux.ReadReply(r); return err }},
		{"refusal", mustMarshal(t, mux.Reply{Status: mux.StatusRefused, Target: "127.0.0.1:22", Message: "no"}), func(r io.Reader) error { _, err := mux.ReadReply(r); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := bytes.NewBuffer(cat(tt.hdr, []byte(after)))
			if err := tt.read(buf); err != nil {
				t.Fatalf("read header: %v", err)
			}
			if got := buf.String(); got != after {
				t.Fatalf("bytes after the header = %q, want %q", got, after)
			}
		})
	}
}

type marshaler interface{ MarshalBinary() ([]byte, error) }

func mustMarshal(t *testing.T, m marshaler) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	return b
}

// TestStreamErrorText pins the lines a user sees when a stream is refused.
func TestStreamErrorText(t *testing.T) {
	tests := []struct {
		rep  mux.Reply
		want string
	}{
		{mux.Reply{Status: mux.StatusNotAllowed, Target: "10.0.0.1:5432"},
			"server refused target 10.0.0.1:5432: not allowed (add --allow 10.0.0.1:5432 to `sandmux server` in the sandbox)"},
		// What no --allow could name gets no advice to allow it.
		{mux.Reply{Status: mux.StatusNotAllowed, Target: "nonsense"},
			"server refused target nonsense: not allowed (not HOST:PORT)"},
		{mux.Reply{Status: mux.StatusNotAllowed, Target: "127.0.0.1:0"},
			"server refused target 127.0.0.1:0: not allowed (not HOST:PORT)"},
		{mux.Reply{Status: mux.StatusNotAllowed, Target: "[::1]:5432"},
			"server refused target [::1]:5432: not allowed (add --allow [::1]:5432 to `sandmux server` in the sandbox)"},
		{mux.Reply{Status: mux.StatusRefused, Target: "127.0.0.1:22", Message: "dial tcp 127.0.0.1:22: connect: connection refused"},
			"127.0.0.1:22 refused the connection inside the sandbox (is sshd running?)"},
		{mux.Reply{Status: mux.StatusRefused, Target: "[::1]:22"},
			"[::1]:22 refused the connection inside the sandbox (is sshd running?)"},
		{mux.Reply{Status: mux.StatusRefused, Target: "127.0.0.1:5432"},
			"127.0.0.1:5432 refused the connection inside the sandbox (is the service listening?)"},
		{mux.Reply{Status: mux.StatusRefused, Target: "127.0.0.1:2222"},
			"127.0.0.1:2222 refused the connection inside the sandbox (is the service listening?)"},
		{mux.Reply{Status: mux.StatusUnreachable, Target: "db.internal:5432", Message: "i/o timeout"},
			"cannot reach db.internal:5432 inside the sandbox: i/o timeout"},
		{mux.Reply{Status: mux.StatusBadRequest, Message: "malformed stream header: truncated field"},
			"server rejected the stream header: malformed stream header: truncated field (are client and server versions compatible?)"},
		{mux.Reply{Status: mux.StatusLimit, Message: "server stream limit of 1000 reached"},
			"server stream limit of 1000 reached"},
		{mux.Reply{Status: mux.StatusInternal, Target: "127.0.0.1:22", Message: "too many open files"},
			"server could not open a stream to 127.0.0.1:22: too many open files"},
		{mux.Reply{Status: 42, Target: "127.0.0.1:22", Message: "new failure"},
			"server could not open a stream to 127.0.0.1:22: new failure"},
	}
	for _, tt := range tests {
		t.Run(tt.rep.Status.String(), func(t *testing.T) {
			err := tt.rep.Err()
			var se *mux.StreamError
			if !errors.As(err, &se) {
				t.Fatalf("Err() = %#v, want a *StreamError", err)
			}
			if se.Status != tt.rep.Status || se.Target != tt.rep.Target || se.Message != tt.rep.Message {
				t.Fatalf("StreamError = %+v, want fields of %+v", se, tt.rep)
			}
			if got := err.Error(); got != tt.want {
				t.Fatalf("Error() =\n  %s\nwant\n  %s", got, tt.want)
			}
		})
	}
}

// A client tries another session for a refused stream only where that
// may help: the session's own limit, or a limit a server older than the
// field does not name (it has only this way to say either).
func TestSessionLimit(t *testing.T) {
	tests := []struct {
		rep  mux.Reply
		want bool
	}{
		{mux.Reply{Status: mux.StatusLimit, Limit: mux.LimitSession}, true},
		{mux.Reply{Status: mux.StatusLimit}, true},
		{mux.Reply{Status: mux.StatusLimit, Limit: mux.LimitServer}, false},
		{mux.Reply{Status: mux.StatusLimit, Limit: "sandbox"}, false},
		{mux.Reply{Status: mux.StatusInternal, Limit: mux.LimitSession}, false},
	}
	for _, tt := range tests {
		var se *mux.StreamError
		if !errors.As(tt.rep.Err(), &se) || se.SessionLimit() != tt.want {
			t.Errorf("%+v: SessionLimit() is not %v", tt.rep, tt.want)
		}
	}
}

func TestReplyOKHasNoError(t *testing.T) {
	if err := (mux.Reply{Status: mux.StatusOK, Target: "127.0.0.1:22", Message: "ignored"}).Err(); err != nil {
		t.Fatalf("OK reply Err() = %v, want nil", err)
	}
}

func TestStatusString(t *testing.T) {
	tests := []struct {
		s    mux.Status
		want string
	}{
		{mux.StatusOK, "ok"},
		{mux.StatusNotAllowed, "not allowed"},
		{mux.StatusRefused, "refused"},
		{mux.StatusUnreachable, "unreachable"},
		{mux.StatusBadRequest, "bad request"},
		{mux.StatusLimit, "limit"},
		{mux.StatusInternal, "internal error"},
		{42, "status 42"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("Status(%d).String() = %q, want %q", uint8(tt.s), got, tt.want)
		}
	}
}

// TestStatusNumbers pins the wire values; they must never be renumbered.
func TestStatusNumbers(t *testing.T) {
	got := []mux.Status{mux.StatusOK, mux.StatusNotAllowed, mux.StatusRefused, mux.StatusUnreachable,
		mux.StatusBadRequest, mux.StatusLimit, mux.StatusInternal}
	for i, s := range got {
		if int(s) != i {
			t.Errorf("status %q is %d on the wire, want %d", s, s, i)
		}
	}
	if mux.HeaderVersion != 1 || mux.MaxHeaderSize != 4096 {
		t.Errorf("HeaderVersion, MaxHeaderSize = %d, %d; want 1, 4096", mux.HeaderVersion, mux.MaxHeaderSize)
	}
}

// TestSpecExamples pins the hex examples of spec.md §5.6.
func TestSpecExamples(t *testing.T) {
	tests := []struct {
		name string
		m    marshaler
		hex  string
	}{
		{"request 127.0.0.1:22", mux.Request{Target: "127.0.0.1:22"}, "01 00 00 0f 01 00 0c 31 32 37 2e 30 2e 30 2e 31 3a 32 32"},
		{"ok reply", mux.Reply{Status: mux.StatusOK, Target: "127.0.0.1:22"}, "01 00 00 0f 01 00 0c 31 32 37 2e 30 2e 30 2e 31 3a 32 32"},
		{"default target", mux.Request{}, "01 00 00 00"},
		{"not allowed", mux.Reply{Status: mux.StatusNotAllowed, Target: "10.0.0.1:5432"}, "01 01 00 10 01 00 0d 31 30 2e 30 2e 30 2e 31 3a 35 34 33 32"},
		{"refused", mux.Reply{Status: mux.StatusRefused, Target: "127.0.0.1:22", Message: "dial tcp 127.0.0.1:22: connect: connection refused"},
			"01 02 00 44 01 00 0c 31 32 37 2e 30 2e 30 2e 31 3a 32 32 02 00 32 64 69 61 6c 20 74 63 70 20 31 32 37 " +
				"2e 30 2e 30 2e 31 3a 32 32 3a 20 63 6f 6e 6e 65 63 74 3a 20 63 6f 6e 6e 65 63 74 69 6f 6e 20 72 65 66 75 73 65 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := hex.DecodeString(strings.ReplaceAll(tt.hex, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			if got := mustMarshal(t, tt.m); !bytes.Equal(got, want) {
				t.Fatalf("encoding = % x\nspec.md says % x", got, want)
			}
		})
	}
}
