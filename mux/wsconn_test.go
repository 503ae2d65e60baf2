package mux

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// recordConn is a net.Conn whose writes are kept one by one, standing in
// for a WebSocket where every Write is one message.
type recordConn struct {
	net.Conn // nil: only Write is used
	writes   [][]byte
	failNext error
}

func (r *recordConn) Write(p []byte) (int, error) {
	if err := r.failNext; err != nil {
		r.failNext = nil
		return 0, err
	}
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

// yamuxHeader encodes a yamux v0 frame header.
func yamuxHeader(typ byte, flags uint16, stream, length uint32) []byte {
	h := make([]byte, yamuxHeaderSize)
	h[0] = 0
	h[1] = typ
	binary.BigEndian.PutUint16(h[2:], flags)
	binary.BigEndian.PutUint32(h[4:], stream)
	binary.BigEndian.PutUint32(h[8:], length)
	return h
}

func body(n int, fill byte) []byte { return bytes.Repeat([]byte{fill}, n) }

func joined(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestCoalescingConn(t *testing.T) {
	const (
		typeData         = 0
		typeWindowUpdate = 1
		typePing         = 2
		typeGoAway       = 3
		flagSYN          = 1
		flagFIN          = 4
	)
	dataHdr := yamuxHeader(typeData, 0, 1, 5)
	payload := []byte("hello")
	bigHdr := yamuxHeader(typeData, 0, 3, 32<<10)
	bigBody := body(32<<10, 'x')
	winUpd := yamuxHeader(typeWindowUpdate, flagSYN, 5, 16<<20)
	ping := yamuxHeader(typePing, flagSYN, 0, 7)
	goAway := yamuxHeader(typeGoAway, 0, 0, 0)
	fin := yamuxHeader(typeData, flagFIN, 1, 0)

	tests := []struct {
		name   string
		writes [][]byte
		want   [][]byte // what the underlying conn must see, write by write
	}{
		{"data header joins its body", [][]byte{dataHdr, payload}, [][]byte{joined(dataHdr, payload)}},
		{"32 KiB frame is one write", [][]byte{bigHdr, bigBody}, [][]byte{joined(bigHdr, bigBody)}},
		{"window update passes", [][]byte{winUpd}, [][]byte{winUpd}},
		{"ping passes", [][]byte{ping}, [][]byte{ping}},
		{"go away passes", [][]byte{goAway}, [][]byte{goAway}},
		{"empty data frame (FIN) passes", [][]byte{fin}, [][]byte{fin}},
		{"non-header sizes pass", [][]byte{body(11, 'a'), body(13, 'b'), body(1, 'c')}, [][]byte{body(11, 'a'), body(13, 'b'), body(1, 'c')}},
		{"mixed sequence", [][]byte{winUpd, dataHdr, payload, ping, bigHdr, bigBody, fin, ping},
			[][]byte{winUpd, joined(dataHdr, payload), ping, joined(bigHdr, bigBody), fin, ping}},
		{"consecutive data frames", [][]byte{dataHdr, payload, dataHdr, payload},
			[][]byte{joined(dataHdr, payload), joined(dataHdr, payload)}},
		// A body that happens to be 12 bytes long and look like a data
		// header is still a body: only the write after a header is joined.
		{"12-byte body that looks like a header", [][]byte{yamuxHeader(typeData, 0, 1, 12), yamuxHeader(typeData, 0, 9, 9)},
			[][]byte{joined(yamuxHeader(typeData, 0, 1, 12), yamuxHeader(typeData, 0, 9, 9))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordConn{}
			c := &coalescingConn{Conn: rec}
			var in []byte
			for i, w := range tt.writes {
				n, err := c.Write(w)
				if err != nil || n != len(w) {
					t.Fatalf("write %d: Write(%d bytes) = %d, %v", i, len(w), n, err)
				}
				in = append(in, w...)
			}
			if len(rec.writes) != len(tt.want) {
				t.Fatalf("underlying writes = %d, want %d (sizes %v)", len(rec.writes), len(tt.want), sizes(rec.writes))
			}
			for i := range tt.want {
				if !bytes.Equal(rec.writes[i], tt.want[i]) {
					t.Fatalf("underlying write %d = %d bytes % x..., want %d bytes % x...", i,
						len(rec.writes[i]), head(rec.writes[i]), len(tt.want[i]), head(tt.want[i]))
				}
			}
			// The byte stream is the same with or without coalescing.
			if out := bytes.Join(rec.writes, nil); !bytes.Equal(out, in) {
				t.Fatalf("byte stream changed: %d bytes in, %d out", len(in), len(out))
			}
		})
	}
}

// TestCoalescingConnWriteError: a failed joined write reports the error for
// the body write, and the conn does not hold on to the old header.
func TestCoalescingConnWriteError(t *testing.T) {
	errBoom := errors.New("boom")
	rec := &recordConn{}
	c := &coalescingConn{Conn: rec}
	hdr := yamuxHeader(0, 0, 1, 3)
	if n, err := c.Write(hdr); n != len(hdr) || err != nil {
		t.Fatalf("Write(header) = %d, %v", n, err)
	}
	rec.failNext = errBoom
	if n, err := c.Write([]byte("abc")); !errors.Is(err, errBoom) || n != 0 {
		t.Fatalf("Write(body) = %d, %v; want 0, %v", n, err, errBoom)
	}
	ping := yamuxHeader(2, 0, 0, 1)
	if _, err := c.Write(ping); err != nil {
		t.Fatalf("Write(ping) after failure: %v", err)
	}
	if len(rec.writes) != 1 || !bytes.Equal(rec.writes[0], ping) {
		t.Fatalf("after a failed body the next write was not passed through alone: %v", sizes(rec.writes))
	}
}

func sizes(ws [][]byte) []int {
	out := make([]int, len(ws))
	for i, w := range ws {
		out[i] = len(w)
	}
	return out
}

func head(b []byte) []byte { return b[:min(len(b), 16)] }

// TestNetConnOneMessagePerDataFrame: over a real WebSocket, a data frame
// written as header then body arrives as one binary message, and a window
// update as its own message, through the library and through frames built
// in place (Link.Frames).
func TestNetConnOneMessagePerDataFrame(t *testing.T) {
	for _, framed := range []bool{false, true} {
		t.Run(fmt.Sprintf("framed=%v", framed), func(t *testing.T) { testNetConnOneMessagePerDataFrame(t, framed) })
	}
}

func testNetConnOneMessagePerDataFrame(t *testing.T, framed bool) {
	msgs := make(chan []byte, 8)
	errc := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			errc <- err
			return
		}
		defer ws.CloseNow()
		ws.SetReadLimit(1 << 20)
		for {
			typ, b, err := ws.Read(context.Background())
			if err != nil {
				errc <- err
				return
			}
			if typ != websocket.MessageBinary {
				errc <- fmt.Errorf("got a %v message", typ)
				return
			}
			msgs <- b
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var conn net.Conn
	if framed {
		l := dialFramed(ctx, t, srv.URL)
		conn = l.NetConn(context.Background())
		if _, ok := conn.(*coalescingConn).Conn.(*framedConn); !ok {
			t.Fatalf("a Link with Frames wrote through %T", conn.(*coalescingConn).Conn)
		}
	} else {
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conn = NetConn(context.Background(), ws)
	}
	hdr, payload, upd := yamuxHeader(0, 0, 1, 4), []byte("ping"), yamuxHeader(1, 0, 1, 1024)
	// Past framedConn's own 4 KiB buffer, and past the pooled buffers.
	hdr2, mid, big := yamuxHeader(0, 0, 1, 100<<10), body(100<<10, 5), body(300<<10, 7)
	for _, w := range [][]byte{hdr, payload, upd, hdr2, mid, big} {
		if _, err := conn.Write(w); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	for i, want := range [][]byte{joined(hdr, payload), upd, joined(hdr2, mid), big} {
		select {
		case got := <-msgs:
			if !bytes.Equal(got, want) {
				t.Fatalf("message %d = % x, want % x", i, got, want)
			}
		case err := <-errc:
			t.Fatalf("server read: %v", err)
		case <-ctx.Done():
			t.Fatalf("message %d never arrived", i)
		}
	}
	if err := conn.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := <-errc; websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("server saw %v, want a normal closure", err)
	}
}

// TestNetConnMessageRules: empty binary messages carry nothing, and a text
// message is a protocol error, never data.
func TestNetConnMessageRules(t *testing.T) {
	type msg struct {
		typ  websocket.MessageType
		data string
	}
	tests := []struct {
		name    string
		send    []msg
		want    string // bytes read before the end
		wantErr bool   // the end is an error rather than EOF
	}{
		{"empty messages skipped", []msg{{websocket.MessageBinary, ""}, {websocket.MessageBinary, "ab"}, {websocket.MessageBinary, ""}, {websocket.MessageBinary, "c"}}, "abc", false},
		{"boundaries ignored", []msg{{websocket.MessageBinary, "a"}, {websocket.MessageBinary, "bcd"}}, "abcd", false},
		{"text is an error", []msg{{websocket.MessageBinary, "ok"}, {websocket.MessageText, "hello"}}, "ok", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer close(done)
				ws, err := websocket.Accept(w, r, nil)
				if err != nil {
					return
				}
				defer ws.CloseNow()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				for _, m := range tt.send {
					if err := ws.Write(ctx, m.typ, []byte(m.data)); err != nil {
						return
					}
				}
				_ = ws.Close(websocket.StatusNormalClosure, "")
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			conn := NetConn(context.Background(), ws)
			defer conn.Close()
			got, err := io.ReadAll(conn)
			if string(got) != tt.want || (err != nil) != tt.wantErr {
				t.Fatalf("read %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
			<-done
		})
	}
}

// A raw connection closed while a Read waits reports net.ErrClosed, not
// the library's "context canceled", which a caller would take for a
// failure (the agent told a proxy whose ssh had exited cleanly).
func TestRawNetConnClosedDuringRead(t *testing.T) {
	cli, srv := wsPair(t)
	// The peer reads, so that the close handshake is answered.
	peerDone := make(chan struct{})
	defer func() { <-peerDone }()
	go func() {
		defer close(peerDone)
		for {
			if _, _, err := srv.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	nc := RawNetConn(context.Background(), cli)
	read := make(chan error, 1)
	go func() {
		_, err := nc.Read(make([]byte, 10))
		read <- err
	}()
	// Close while the Read waits: the Read either has begun (and is
	// cancelled) or finds the connection closed; both must say so.
	_ = nc.Close()
	if err := <-read; !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
		t.Fatalf("read after close: %v, want net.ErrClosed", err)
	}
	if _, err := nc.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v, want net.ErrClosed", err)
	}
}
