package server_test

// A hostile client against the public port: what it may not make the
// server hold, and whose session it may not disturb. See also
// hardening_test.go (bad bytes, floods of yamux pings and refusals) and
// limits_test.go (the session and stream limits).

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
	"github.com/sandmux/sandmux/server"
)

// sendSession writes session bytes as one sandmux.v2 DATA message.
func sendSession(ctx context.Context, ws *websocket.Conn, b ...[]byte) error {
	msg := []byte{0} // DATA
	for _, p := range b {
		msg = append(msg, p...)
	}
	return ws.Write(ctx, websocket.MessageBinary, msg)
}

// openRawStream opens yamux stream id on a hand-made sandmux.v2 session,
// granting the server window more bytes to send on it, and sends its
// header (the default target).
func openRawStream(t *testing.T, ctx context.Context, ws *websocket.Conn, id, window uint32) {
	t.Helper()
	hdr, err := mux.Request{}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := sendSession(ctx, ws, yamuxHeader(yamuxWindow, yamuxSYN, id, window),
		yamuxHeader(yamuxData, 0, id, uint32(len(hdr))), hdr); err != nil {
		t.Fatalf("open stream %d: %v", id, err)
	}
}

// TestUnackedBytesStayWithinResumeBuffer: a client that reads what the
// server sends but never acknowledges it cannot make the server keep more
// than its resume buffer for replay (spec §9.3): past it the server stops
// sending, whatever window the client grants and however much its target
// has to send.
func TestUnackedBytesStayWithinResumeBuffer(t *testing.T) {
	const buffer, slack = 512 << 10, 64 << 10 // slack: small frames may pass the limit by this
	source := testutil.Serve(t, func(c net.Conn) {
		_, _ = c.Write(make([]byte, 16*buffer)) // cut when the session ends
	})
	s, logs := logServer(t, source.Addr, func(c *server.Config) {
		c.ResumeGrace = time.Minute
		c.Resume.Buffer, c.Resume.MinInFlight, c.Resume.AckEvery = buffer, 256<<10, 64<<10
	})
	ctx, cancel := context.WithTimeout(context.Background(), hardWait)
	defer cancel()
	ws := wsDial(t, s.url, mux.SubprotocolResumable)
	if w, err := mux.ClientHandshake(ctx, ws, mux.Hello{}); err != nil || w.Status != mux.WelcomeNew {
		t.Fatalf("hello: %v, %v", w.Status, err)
	}
	ws.SetReadLimit(1 << 20)
	openRawStream(t, ctx, ws, 1, 64<<20)
	var data atomic.Int64 // session bytes received, none acknowledged
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			if len(b) > 0 && b[0] == 0 {
				data.Add(int64(len(b) - 1))
			}
		}
	}()
	defer func() { _ = ws.CloseNow(); <-done }()
	if !testutil.Poll(hardWait, func() bool { return data.Load() >= buffer/2 }) {
		t.Fatalf("only %d bytes arrived\n%s", data.Load(), logs.String())
	}
	// Over a while longer, the server must send no more than its buffer.
	if testutil.Poll(time.Second, func() bool { return data.Load() > buffer+slack }) {
		t.Fatalf("the server sent %d bytes unacknowledged, past its %d-byte resume buffer", data.Load(), buffer)
	}
	t.Logf("%d bytes sent unacknowledged (buffer %d)", data.Load(), buffer)
}

// pongOn sends a yamux ping on a hand-made sandmux.v2 session and waits
// for its answer, skipping the server's own pings and acknowledgements:
// the session is attached to ws and served.
func pongOn(ctx context.Context, ws *websocket.Conn, value uint32) error {
	if err := sendSession(ctx, ws, yamuxHeader(2, yamuxSYN, 0, value)); err != nil {
		return err
	}
	var stream []byte // the server's session bytes, frames parsed off the front
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return err
		}
		if len(b) == 0 || b[0] != 0 {
			continue // an ACK
		}
		stream = append(stream, b[1:]...)
		for len(stream) >= 12 {
			typ, flags := stream[1], binary.BigEndian.Uint16(stream[2:])
			length := binary.BigEndian.Uint32(stream[8:])
			if typ == 2 && flags&2 != 0 && length == value {
				return nil
			}
			if typ == yamuxData {
				return errors.New("data on a session with no stream")
			}
			stream = stream[12:]
		}
	}
}

// TestWrongResumeLeavesLiveSessionAttached: resumes of a live session
// with a wrong secret, or with the right secret and other credentials,
// are denied without touching it: it stays attached to its WebSocket and
// keeps answering. (A resume that is let in first detaches the WebSocket
// in use, spec §9.4, which is why it must prove itself before.)
func TestWrongResumeLeavesLiveSessionAttached(t *testing.T) {
	s := startServer(t, testutil.EchoServer(t).Addr, func(c *server.Config) { c.ResumeGrace = time.Minute })
	ctx, cancel := context.WithTimeout(context.Background(), hardWait)
	defer cancel()
	live := wsDial(t, s.url, mux.SubprotocolResumable)
	w, err := mux.ClientHandshake(ctx, live, mux.Hello{})
	if err != nil || w.Status != mux.WelcomeNew {
		t.Fatalf("hello: %v, %v", w.Status, err)
	}
	if err := pongOn(ctx, live, 1); err != nil {
		t.Fatalf("the new session: %v", err)
	}
	wrong := w.Secret
	wrong[31] ^= 1
	for i, tc := range []struct {
		secret [mux.SecretSize]byte
		header http.Header
	}{
		{wrong, nil},
		{w.Secret, http.Header{"Authorization": {"Bearer not-the-original"}}},
	} {
		h := http.Header{mux.ResumeHeader: {"1"}}
		for k, v := range tc.header {
			h[k] = v
		}
		ws, _, err := websocket.Dial(ctx, s.url, &websocket.DialOptions{Subprotocols: []string{mux.SubprotocolResumable}, HTTPHeader: h})
		if err != nil {
			t.Fatal(err)
		}
		got, err := mux.ClientHandshake(ctx, ws, mux.Hello{ID: w.ID, Secret: tc.secret})
		_ = ws.CloseNow()
		if err != nil || !errors.Is(got.Err(), mux.ErrResumeDenied) {
			t.Fatalf("resume %d: status %v, err %v; want denied", i, got.Status, err)
		}
		if err := pongOn(ctx, live, uint32(i+2)); err != nil {
			t.Fatalf("the live session after resume %d was denied: %v", i, err)
		}
	}
	if n := s.srv.Stats().Resumes; n != 0 {
		t.Fatalf("%d resumes counted, want 0", n)
	}
}

// TestCompressionOfferedIsDeclined: a client offering permessage-deflate
// gets none, in every mode: a compressed message is inflated by the
// receiver into a buffer of its own, which a peer could make large (a
// small message that inflates a thousandfold), and SSH does not compress.
func TestCompressionOfferedIsDeclined(t *testing.T) {
	s := startServer(t, testutil.EchoServer(t).Addr, nil)
	for _, protos := range [][]string{{mux.SubprotocolResumable}, {mux.Subprotocol}, nil} {
		for _, mode := range []websocket.CompressionMode{websocket.CompressionContextTakeover, websocket.CompressionNoContextTakeover} {
			ctx, cancel := context.WithTimeout(context.Background(), hardWait)
			ws, resp, err := websocket.Dial(ctx, s.url, &websocket.DialOptions{Subprotocols: protos, CompressionMode: mode})
			cancel()
			if err != nil {
				t.Fatalf("%v: %v", protos, err)
			}
			_ = ws.CloseNow()
			if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
				t.Fatalf("%v, compression mode %v offered: the server accepted %q", protos, mode, ext)
			}
		}
	}
}

// TestWebSocketPingFloodWithoutReading: a client sending WebSocket pings
// (control frames, answered by the library with pongs) without reading
// the answers has its session ended and its connection closed once a
// pong cannot be written for a few seconds, rather than holding the
// server's reader, and the session, until the write timeout. (The
// kernel may keep the closed socket a while to deliver what it still
// holds; that is no longer the process's.)
func TestWebSocketPingFloodWithoutReading(t *testing.T) {
	s, logs := logServer(t, testutil.EchoServer(t).Addr, func(c *server.Config) {
		c.Mux.WriteTimeout = 5 * time.Minute // not the bound tested
	})
	c := rawUpgrade(t, s.url, mux.Subprotocol)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 10) // fill up soon
	}
	ping := wsFrame(true, 0x9, make([]byte, 125))
	burst := make([]byte, 0, 64*len(ping))
	for range 64 {
		burst = append(burst, ping...)
	}
	flooding := make(chan error, 1)
	go func() {
		var err error
		for err == nil {
			_, err = c.Write(burst)
		}
		flooding <- err
	}()
	start := time.Now()
	if !testutil.Poll(hardWait, func() bool { return testutil.CountLines(logs.String(), `msg="session ended"`) > 0 }) {
		t.Fatalf("the server still held the session %v into a ping flood whose pongs were not read\n%s", hardWait, logs.String())
	}
	t.Logf("session ended after %v", time.Since(start).Round(time.Millisecond))
	if !testutil.Poll(hardWait, func() bool { return s.srv.Stats().ActiveSessions == 0 }) {
		t.Fatal("the session ended but is still counted")
	}
	_ = c.Close()
	<-flooding
	stillServes(t, s)
}

// TestWebSocketFrameOfNegativeLength: a frame whose 64-bit length has its
// top bit set (negative as a signed length, or 8 EiB) ends the
// connection at once, in either sandmux version, before anything is
// allocated for it.
func TestWebSocketFrameOfNegativeLength(t *testing.T) {
	s := startServer(t, testutil.EchoServer(t).Addr, func(c *server.Config) { c.ResumeGrace = time.Minute })
	for _, proto := range []string{mux.Subprotocol, mux.SubprotocolResumable} {
		c := rawUpgrade(t, s.url, proto)
		frame := []byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}
		if _, err := c.Write(frame); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(hardWait))
		var err error
		for err == nil {
			_, err = c.Read(make([]byte, 4096)) // the close frame, if any, then the end
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: the connection was still open %v after a frame of negative length", proto, hardWait)
		}
	}
	stillServes(t, s)
}
