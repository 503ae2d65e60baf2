package server_test

// Hardening: what a hostile or broken peer can do to a server, and what
// the server and its log say about it. Every test ends by proving that
// the server still serves a good client.
//
// Already covered elsewhere and not repeated here: 426 for plain HTTP,
// 401 before the upgrade, 400 for an unknown sandmux.vN (TestHTTPAnswers);
// the stream header refusal texts (TestBadStreamHeader); not allowed,
// refused and unresolvable targets (TestStreamRefusals); the session,
// stream and idle limits (limits_test.go).

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/logflood"
	"github.com/sandmux/sandmux/internal/netem"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
	"github.com/sandmux/sandmux/server"
)

// hardWait bounds each wait in this file: every reaction tested here is
// meant to be immediate or bounded by a short configured timeout.
const hardWait = 20 * time.Second

// logServer is startServer with debug logs captured.
func logServer(t *testing.T, target string, mod func(*server.Config)) (*testServer, *testutil.Buffer) {
	t.Helper()
	logs := &testutil.Buffer{}
	s := startServer(t, target, func(c *server.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if mod != nil {
			mod(c)
		}
	})
	return s, logs
}

// waitLog waits until one line of logs contains every one of subs.
func waitLog(t *testing.T, logs *testutil.Buffer, subs ...string) {
	t.Helper()
	if !testutil.Poll(hardWait, func() bool { return testutil.CountLines(logs.String(), subs...) > 0 }) {
		t.Fatalf("no log line with %q\n--- server log ---\n%s", subs, logs.String())
	}
}

// waitLogEither waits until one line of logs contains every one of subs
// and at least one of either.
func waitLogEither(t *testing.T, logs *testutil.Buffer, subs, either []string) {
	t.Helper()
	found := func() bool {
		for _, e := range either {
			if testutil.CountLines(logs.String(), append(subs[:len(subs):len(subs)], e)...) > 0 {
				return true
			}
		}
		return false
	}
	if !testutil.Poll(hardWait, found) {
		t.Fatalf("no log line with %q and one of %q\n--- server log ---\n%s", subs, either, logs.String())
	}
}

// stillServes proves that a good client gets a session and an echo.
func stillServes(t *testing.T, s *testServer) {
	t.Helper()
	sess := dial(t, clientConfig(s.url))
	ctx, cancel := context.WithTimeout(context.Background(), hardWait)
	defer cancel()
	c, err := sess.OpenStream(ctx, "")
	if err != nil {
		t.Fatalf("a good client after the bad one: OpenStream: %v", err)
	}
	defer c.Close()
	if _, err := echoCheck(c, 64<<10); err != nil {
		t.Fatalf("a good client after the bad one: %v", err)
	}
	_ = sess.Close()
}

// wsDial opens a WebSocket offering protos (none: raw mode).
func wsDial(t *testing.T, url string, protos ...string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hardWait)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: protos, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		t.Fatalf("dial %v: %v", protos, err)
	}
	if len(protos) > 0 && ws.Subprotocol() != protos[0] {
		t.Fatalf("server picked %q, want %q", ws.Subprotocol(), protos[0])
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return ws
}

// readUntilClosed reads and drops messages (pings, acks) until the server
// ends the connection, and returns how it ended.
func readUntilClosed(t *testing.T, ws *websocket.Conn) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hardWait)
	defer cancel()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatalf("the server did not close the WebSocket within %v", hardWait)
			}
			return err
		}
	}
}

// yamuxHeader is one yamux frame header (yamux spec.md).
func yamuxHeader(typ, flags uint16, stream, length uint32) []byte {
	b := []byte{0, byte(typ)}
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint32(b, stream)
	return binary.BigEndian.AppendUint32(b, length)
}

const (
	yamuxData   = 0
	yamuxWindow = 1
	yamuxSYN    = 1
)

// TestBadBytesAfterUpgrade: a peer that upgrades and then sends what is
// not the protocol gets its WebSocket closed (with a close status that
// says why, where coder/websocket sends one), the reason is logged, and
// the server goes on serving.
func TestBadBytesAfterUpgrade(t *testing.T) {
	echo := newEchoTarget(t)
	s, logs := logServer(t, echo.addr, func(c *server.Config) { c.Mux.HeaderTimeout = time.Second })
	httpGarbage := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	tests := []struct {
		name  string
		proto string
		hello bool     // complete a new-session hello first (sandmux.v2)
		msgs  [][]byte // binary messages, in order
		text  bool     // send msgs as text messages
		// chatter: after msgs, send a yamux ping every 100 ms until the
		// log line appears, so the session is heard from (a header wait
		// does not count a silence of the whole session).
		chatter bool
		// serverCloses: the server ends the WebSocket by itself; else the
		// test closes it after the log line appears.
		serverCloses bool
		status       websocket.StatusCode // -1: any way of closing
		reason       string               // close reason, when status is set
		log          []string             // one log line holds all of these
		// logErr, if set: that line also holds one of these, where the
		// failure races and either may be the one logged.
		logErr []string
	}{
		{
			name: "v1 HTTP bytes instead of yamux", proto: mux.Subprotocol, msgs: [][]byte{httpGarbage},
			serverCloses: true, status: -1, log: []string{"yamux: Invalid protocol version: 71"},
		},
		{
			name: "v1 unknown yamux frame type", proto: mux.Subprotocol, msgs: [][]byte{yamuxHeader(9, 0, 1, 0)},
			serverCloses: true, status: -1, log: []string{`msg="session ended"`},
		},
		{
			name: "v1 data frame of 4 GiB on a new stream", proto: mux.Subprotocol,
			msgs:         [][]byte{yamuxHeader(yamuxData, yamuxSYN, 1, 0xFFFFFFFF)},
			serverCloses: true, status: -1,
			// remain is 256 KiB, or the start window if the accept's window update
			// ran first.
			log: []string{"yamux: receive window exceeded (stream: 1, remain: ", "recv: 4294967295)"},
		},
		{
			// For a stream that does not exist yamux drains the frame:
			// the server reads and drops bytes and buffers none.
			name: "v1 data frame of 4 GiB for no stream", proto: mux.Subprotocol,
			msgs: [][]byte{yamuxHeader(yamuxData, 0, 7, 0xFFFFFFFF), make([]byte, 64<<10)},
			log:  []string{"yamux: Discarding data for stream: 7"},
		},
		{
			name: "v1 window update of 4 GiB for a new stream", proto: mux.Subprotocol,
			msgs: [][]byte{yamuxHeader(yamuxWindow, yamuxSYN, 1, 0xFFFFFFFF)}, chatter: true,
			log: []string{`msg="no stream header in time"`, "stream=1"},
		},
		{
			name: "v1 truncated yamux header, then a clean close", proto: mux.Subprotocol,
			msgs: [][]byte{yamuxHeader(yamuxWindow, yamuxSYN, 1, 0)[:7], nil},
			// nil: close normally after the half header.
			serverCloses: true, status: -1, log: []string{"yamux: Failed to read header: unexpected EOF"},
		},
		{
			// yamux logs whichever of its loops fails first: the reader on
			// the text message, or the writer (the session's first ping)
			// on the connection the library is already closing for it
			// (about one run in twenty). The client gets the reason either
			// way (status and reason above).
			name: "v1 text message", proto: mux.Subprotocol, msgs: [][]byte{[]byte("hello")}, text: true,
			serverCloses: true, status: websocket.StatusUnsupportedData,
			reason: "unexpected frame type read (expected MessageBinary): MessageText",
			log:    []string{"yamux: Failed to"},
			logErr: []string{"unexpected frame type read (expected MessageBinary): MessageText", "use of closed network connection"},
		},
		{
			name: "v2 HTTP bytes instead of a hello", proto: mux.SubprotocolResumable, msgs: [][]byte{httpGarbage},
			serverCloses: true, status: websocket.StatusProtocolError, reason: "expected a sandmux hello",
			log: []string{`msg="no valid hello on a sandmux.v2 connection"`, "bad hello (27 bytes)"},
		},
		{
			name: "v2 text hello", proto: mux.SubprotocolResumable, msgs: [][]byte{make([]byte, 57)}, text: true,
			serverCloses: true, status: websocket.StatusProtocolError, reason: "expected a sandmux hello",
			log: []string{`msg="no valid hello on a sandmux.v2 connection"`, "text hello"},
		},
		{
			name: "v2 hello of 1 MiB", proto: mux.SubprotocolResumable, msgs: [][]byte{append([]byte{2}, make([]byte, 1<<20)...)},
			serverCloses: true, status: websocket.StatusMessageTooBig, reason: "read limited at 58 bytes",
			log: []string{`msg="no valid hello on a sandmux.v2 connection"`, "read limited at 58 bytes"},
		},
		{
			name: "v2 unknown message type", proto: mux.SubprotocolResumable, hello: true, msgs: [][]byte{{0x7f, 1, 2, 3}},
			serverCloses: true, status: -1, log: []string{"unexpected message type 0x7f"},
		},
		{
			name: "v2 text message after the hello", proto: mux.SubprotocolResumable, hello: true, msgs: [][]byte{[]byte("hi")}, text: true,
			serverCloses: true, status: -1, log: []string{"resumable transport protocol error: text message"},
		},
		{
			name: "v2 ack of bytes never sent", proto: mux.SubprotocolResumable, hello: true,
			msgs:         [][]byte{{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
			serverCloses: true, status: -1, log: []string{"ack of byte 18446744073709551615"},
		},
		{
			name: "v2 HTTP bytes as session data", proto: mux.SubprotocolResumable, hello: true,
			msgs:         [][]byte{append([]byte{0}, httpGarbage...)},
			serverCloses: true, status: -1, log: []string{"yamux: Invalid protocol version: 71"},
		},
		{
			// Over the message limit the session ends for good (spec
			// §9.1): a resume would bring the same message back. The close
			// status says why: coder/websocket sends the close frame
			// before the read returns its error.
			name: "v2 data message over 1 MiB", proto: mux.SubprotocolResumable, hello: true,
			msgs:         [][]byte{append(append([]byte{0}, yamuxHeader(yamuxData, 0, 7, 0xFFFFFFFF)...), make([]byte, 1<<20)...)},
			serverCloses: true, status: websocket.StatusMessageTooBig, reason: "read limited at 1048577 bytes",
			log: []string{"resumable transport protocol error: a message over 1048576 bytes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), hardWait)
			defer cancel()
			ws := wsDial(t, s.url, tt.proto)
			if tt.hello {
				if w, err := mux.ClientHandshake(ctx, ws, mux.Hello{}); err != nil || w.Status != mux.WelcomeNew {
					t.Fatalf("hello: %v, %v", w.Status, err)
				}
			}
			typ := websocket.MessageBinary
			if tt.text {
				typ = websocket.MessageText
			}
			for _, m := range tt.msgs {
				if m == nil {
					if err := ws.Close(websocket.StatusNormalClosure, ""); err != nil {
						t.Logf("close: %v", err)
					}
					break
				}
				if err := ws.Write(ctx, typ, m); err != nil {
					t.Fatalf("write: %v", err)
				}
			}
			if tt.chatter {
				stop := make(chan struct{})
				done := make(chan struct{})
				go func() {
					defer close(done)
					tick := time.NewTicker(100 * time.Millisecond)
					defer tick.Stop()
					for i := uint32(0); ; i++ {
						select {
						case <-stop:
							return
						case <-tick.C:
						}
						if ws.Write(ctx, typ, yamuxHeader(2, yamuxSYN, 0, i)) != nil { // a ping
							return
						}
					}
				}()
				defer func() { close(stop); <-done }()
			}
			if tt.serverCloses {
				err := readUntilClosed(t, ws)
				if tt.status >= 0 {
					var ce websocket.CloseError
					if !errors.As(err, &ce) || ce.Code != tt.status || ce.Reason != tt.reason {
						t.Fatalf("the server closed with %v, want status %v %q", err, tt.status, tt.reason)
					}
				}
			}
			if tt.logErr == nil {
				waitLog(t, logs, tt.log...)
			} else {
				waitLogEither(t, logs, tt.log, tt.logErr)
			}
			_ = ws.CloseNow()
			stillServes(t, s)
		})
	}
}

// rawUpgrade opens a TCP connection and upgrades it by hand, so that the
// test can then write any bytes, including half a WebSocket frame.
func rawUpgrade(t *testing.T, url, proto string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "ws://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	req := "GET / HTTP/1.1\r\nHost: sandbox\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	if proto != "" {
		req += "Sec-WebSocket-Protocol: " + proto + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(hardWait))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("upgrade response: %v", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Protocol") != proto {
		t.Fatalf("upgrade answered %s, protocol %q", resp.Status, resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	return c
}

// wsFrame encodes one masked client frame (RFC 6455 §5.2).
func wsFrame(fin bool, opcode byte, payload []byte) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = binary.BigEndian.AppendUint16(append(b, 0x80|126), uint16(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, 0x80|127), uint64(n))
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	b = append(b, key[:]...)
	for i, p := range payload {
		b = append(b, p^key[i%4])
	}
	return b
}

// recordTarget is a TCP target that records what each connection carried
// until its end.
func recordTarget(t *testing.T) (string, <-chan []byte) {
	t.Helper()
	got := make(chan []byte, 16)
	s := testutil.Serve(t, func(c net.Conn) {
		_ = c.SetReadDeadline(time.Now().Add(2 * hardWait))
		b, _ := io.ReadAll(c)
		got <- b
	})
	return s.Addr, got
}

// TestCloseMidFrame: a client whose connection ends in the middle of a
// WebSocket frame. In raw mode the target gets exactly the complete
// messages and then EOF, never the masked half frame; in sandmux modes
// the session ends and is logged.
func TestCloseMidFrame(t *testing.T) {
	target, got := recordTarget(t)
	s, logs := logServer(t, target, nil)
	half := func(payload []byte, keep int) []byte {
		f := wsFrame(true, 2, payload)
		return f[:len(f)-len(payload)+keep]
	}

	t.Run("raw", func(t *testing.T) {
		c := rawUpgrade(t, s.url, "")
		msg := wsFrame(true, 2, []byte("complete message\n"))
		if _, err := c.Write(append(msg, half([]byte("cut in the middle of this one"), 7)...)); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		select {
		case b := <-got:
			if string(b) != "complete message\n" {
				t.Fatalf("the target received %q, want exactly the complete message", b)
			}
		case <-time.After(hardWait):
			t.Fatal("the target connection was not closed after the client's")
		}
		waitLog(t, logs, `msg="session ended"`, "mode=raw")
	})

	t.Run("v1 inside a yamux header", func(t *testing.T) {
		before := testutil.CountLines(logs.String(), `msg="session ended"`, "bytes_in=")
		c := rawUpgrade(t, s.url, mux.Subprotocol)
		if _, err := c.Write(half(yamuxHeader(yamuxWindow, yamuxSYN, 1, 0), 5)); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		testutil.WaitFor(t, waitTimeout, "the session to end", func() bool {
			return testutil.CountLines(logs.String(), `msg="session ended"`, "bytes_in=") > before
		})
	})

	t.Run("v2 inside the hello", func(t *testing.T) {
		c := rawUpgrade(t, s.url, mux.SubprotocolResumable)
		hello, _ := mux.Hello{}.MarshalBinary()
		if _, err := c.Write(half(hello, 20)); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		waitLog(t, logs, `msg="no valid hello on a sandmux.v2 connection"`, "read hello")
	})

	// The same server still splices a well-behaved raw client.
	c := rawUpgrade(t, s.url, "")
	if _, err := c.Write(append(wsFrame(true, 2, []byte("good")), wsFrame(true, 8, []byte{0x03, 0xe8})...)); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if string(b) != "good" {
			t.Fatalf("the target received %q from a good raw client, want %q", b, "good")
		}
	case <-time.After(hardWait):
		t.Fatal("a good raw client's connection was not spliced and closed")
	}
}

// TestStreamHeaderBounds: a header of exactly MaxHeaderSize is parsed, one
// byte more is refused unread; a header that never finishes is refused
// after HeaderTimeout. Each refusal is logged, frees its stream slot, and
// the session and server go on.
func TestStreamHeaderBounds(t *testing.T) {
	const headerTimeout = 300 * time.Millisecond
	echo := newEchoTarget(t)
	s, logs := logServer(t, echo.addr, func(c *server.Config) { c.Mux.HeaderTimeout = headerTimeout })
	ys := rawYamux(t, s.url)

	// header builds a request whose whole encoding is size bytes.
	header := func(size int) []byte {
		host := strings.Repeat("a", size-4-3-3) // prefix, field head, ":22"
		b := []byte{mux.HeaderVersion, 0}
		b = binary.BigEndian.AppendUint16(b, uint16(size-4))
		b = append(b, 1)
		b = binary.BigEndian.AppendUint16(b, uint16(size-4-3))
		return append(b, host+":22"...)
	}
	exchange := func(send []byte) (mux.Reply, time.Duration) {
		t.Helper()
		// Before the open: OpenStream sends the SYN at once, and the
		// server's header timeout runs from its accept, which can come
		// before a clock started after OpenStream returns.
		start := time.Now()
		st, err := ys.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if _, err := st.Write(send); err != nil {
			t.Fatal(err)
		}
		_ = st.SetReadDeadline(time.Now().Add(hardWait))
		rep, err := mux.ReadReply(st)
		if err != nil {
			t.Fatalf("ReadReply: %v", err)
		}
		took := time.Since(start)
		if n, err := st.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("after the reply: Read = %d, %v; want EOF", n, err)
		}
		return rep, took
	}

	rep, _ := exchange(header(mux.MaxHeaderSize))
	if rep.Status != mux.StatusNotAllowed || len(rep.Target) != mux.MaxHeaderSize-7 {
		t.Fatalf("a %d-byte header: %v (target of %d bytes), want it parsed and its target refused", mux.MaxHeaderSize, rep.Status, len(rep.Target))
	}
	waitLog(t, logs, `msg="refused target: not allowed"`, "target=aaaa")

	rep, _ = exchange(header(mux.MaxHeaderSize + 1)[:4])
	want := "server rejected the stream header: stream header too large: 4097 bytes, limit 4096 (are client and server versions compatible?)"
	if rep.Status != mux.StatusBadRequest || rep.Err().Error() != want {
		t.Fatalf("a %d-byte header: %v\nwant %s", mux.MaxHeaderSize+1, rep.Err(), want)
	}
	waitLog(t, logs, `msg="bad stream header"`, `err="stream header too large: 4097 bytes, limit 4096"`)

	rep, took := exchange(header(64)[:10])
	want = "server could not open a stream: no stream header within the server's --header-timeout (300ms); run the command again"
	if rep.Status != mux.StatusInternal || rep.Err().Error() != want {
		t.Fatalf("an unfinished header: %v\nwant %s", rep.Err(), want)
	}
	if took < headerTimeout || took > headerTimeout+5*time.Second {
		t.Fatalf("an unfinished header was refused after %v, want just after the %v header timeout", took, headerTimeout)
	}
	waitLog(t, logs, `msg="no stream header in time"`, `timeout=300ms`)
	testutil.WaitFor(t, waitTimeout, "the refused streams to be released", func() bool { return s.srv.Stats().ActiveStreams == 0 })

	// The same yamux session still opens good streams.
	st, err := ys.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hdr, _ := mux.Request{}.MarshalBinary()
	if _, err := st.Write(hdr); err != nil {
		t.Fatal(err)
	}
	if rep, err := mux.ReadReply(st); err != nil || rep.Status != mux.StatusOK {
		t.Fatalf("a good stream on the same session: %+v, %v", rep, err)
	}
	stillServes(t, s)
}

// fragConn carries a session over a WebSocket whose every write is one
// message split into many small frames (continuation frames), as a proxy
// that re-frames traffic may deliver it. With v2 set it speaks the
// resumable transport's data messages, without acknowledging anything.
type fragConn struct {
	net.Conn // reads, for v1
	ws       *websocket.Conn
	ctx      context.Context
	frame    int // bytes per frame
	v2       bool
	cur      io.Reader // v2: the data message being read
}

func (f *fragConn) Write(p []byte) (int, error) {
	w, err := f.ws.Writer(f.ctx, websocket.MessageBinary)
	if err != nil {
		return 0, err
	}
	if f.v2 {
		if _, err := w.Write([]byte{0}); err != nil {
			return 0, err
		}
	}
	for rest := p; len(rest) > 0; {
		n := min(len(rest), f.frame)
		if _, err := w.Write(rest[:n]); err != nil {
			return 0, err
		}
		rest = rest[n:]
	}
	return len(p), w.Close()
}

func (f *fragConn) Read(p []byte) (int, error) {
	if !f.v2 {
		return f.Conn.Read(p)
	}
	for {
		if f.cur == nil {
			_, r, err := f.ws.Reader(f.ctx)
			if err != nil {
				return 0, err
			}
			var typ [1]byte
			if _, err := io.ReadFull(r, typ[:]); err != nil {
				return 0, err
			}
			if typ[0] != 0 { // acks: nothing here needs them
				_, _ = io.Copy(io.Discard, r)
				continue
			}
			f.cur = r
		}
		n, err := f.cur.Read(p)
		if err == io.EOF {
			f.cur, err = nil, nil
			if n == 0 {
				continue
			}
		}
		return n, err
	}
}

func (f *fragConn) Close() error {
	if f.v2 { // end the session at once rather than leave it to resume
		_ = f.ws.Write(f.ctx, websocket.MessageBinary, []byte{4})
	}
	return f.Conn.Close()
}

// TestFragmentedMessages: a message may arrive as many frames; yamux
// frames split across frames and messages are reassembled, in both
// protocol versions.
func TestFragmentedMessages(t *testing.T) {
	echo := newEchoTarget(t)
	s, logs := logServer(t, echo.addr, nil)
	for _, v2 := range []bool{false, true} {
		for _, frame := range []int{1, 5, 4096} {
			proto := mux.Subprotocol
			if v2 {
				proto = mux.SubprotocolResumable
			}
			t.Run(fmt.Sprintf("%s frames of %d bytes", proto, frame), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				defer cancel()
				ws := wsDial(t, s.url, proto)
				if v2 {
					if w, err := mux.ClientHandshake(ctx, ws, mux.Hello{}); err != nil || w.Status != mux.WelcomeNew {
						t.Fatalf("hello: %v %v", w.Status, err)
					}
				}
				life, stop := context.WithCancel(context.Background())
				defer stop()
				fc := &fragConn{Conn: websocket.NetConn(life, ws, websocket.MessageBinary), ws: ws, ctx: life, frame: frame, v2: v2}
				sess, err := mux.Client(fc, fastMux(), nil)
				if err != nil {
					t.Fatal(err)
				}
				defer sess.Close()
				size := map[int]int{1: 4 << 10, 5: 32 << 10}[frame] // tiny frames are slow under -race
				if size == 0 {
					size = 256 << 10
				}
				for i := range 2 {
					st, err := sess.Open(ctx, mux.Request{})
					if err != nil {
						t.Fatalf("open %d: %v", i, err)
					}
					if _, err := echoCheck(st, size); err != nil {
						t.Fatalf("stream %d: %v", i, err)
					}
					_ = st.Close()
				}
			})
		}
	}
	if n := testutil.CountLines(logs.String(), "level=WARN") + testutil.CountLines(logs.String(), "level=ERROR"); n != 0 {
		t.Errorf("fragmented messages caused %d warnings or errors:\n%s", n, logs.String())
	}
	stillServes(t, s)
}

// TestTokenNeverLogged: with debug logging on, no path through the
// server (good and bad upgrades, resumes, stream opens and refusals) and
// no path through the client writes the token to a log.
func TestTokenNeverLogged(t *testing.T) {
	const token = "s3cr3t-TOKEN"
	echo := newEchoTarget(t)
	s, logs := logServer(t, echo.addr, func(c *server.Config) {
		c.Token = token
		c.ResumeGrace = 30 * time.Second
		c.Allow = []string{"nosuch.invalid:22"}
	})
	fault, err := netem.Start(netem.Config{Target: strings.TrimPrefix(s.url, "ws://")})
	if err != nil {
		t.Fatal(err)
	}
	defer fault.Close()
	clientLogs := &testutil.Buffer{}
	debug := slog.New(slog.NewTextHandler(clientLogs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cfg := func(url string, mod func(*client.Config)) client.Config {
		c := clientConfig(url)
		c.Token, c.Logger = token, debug
		c.Backoff = client.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond, StableAfter: time.Second}
		if mod != nil {
			mod(&c)
		}
		return c
	}

	// A resumable session through the fault proxy, resumed once.
	sess := dial(t, cfg("ws://"+fault.Addr(), nil))
	c, err := sess.OpenStream(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	echo1 := func(msg string) {
		t.Helper()
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
			t.Fatal(err)
		}
	}
	echo1("before the cut")
	fault.Cut()
	echo1("after the cut")
	waitLog(t, logs, `msg="session resumed"`)
	// Refused streams of every kind on the same session.
	for _, target := range []string{"10.0.0.1:5432", "nosuch.invalid:22", "not a target"} {
		if _, err := sess.OpenStream(ctx, target); err == nil {
			t.Fatalf("OpenStream(%q) succeeded", target)
		}
	}
	_ = c.Close()
	_ = sess.Close()

	// A sandmux.v1 session, its token in the header rather than the config.
	v1 := dial(t, cfg(s.url, func(c *client.Config) {
		c.NoResume, c.Token = true, ""
		c.Header = http.Header{"Authorization": {"Bearer " + token}}
	}))
	if c, err := v1.OpenStream(ctx, ""); err != nil {
		t.Fatal(err)
	} else {
		_, _ = echoCheck(c, 1000)
		_ = c.Close()
	}
	_ = v1.Close()

	// Upgrades that are refused, several carrying the token somewhere.
	for _, mod := range []func(*client.Config){
		func(c *client.Config) { c.Token = "" },
		func(c *client.Config) { c.Token = "wrong-" + token },
		func(c *client.Config) { c.Token = token + "-wrong" },
		func(c *client.Config) { c.Token, c.Header = "", http.Header{"Authorization": {"Basic " + token}} },
		func(c *client.Config) { c.Token, c.Header = "", http.Header{"X-Token": {token}} },
		func(c *client.Config) { c.Token, c.URL = "", s.url+"/?token="+token },
	} {
		if sess, err := client.Dial(ctx, cfg(s.url, mod)); err == nil {
			_ = sess.Close()
			t.Fatal("a wrong token was accepted")
		}
	}

	// A resume with the right token and a wrong secret, and one with the
	// right secret and another token, made by hand.
	hdr := http.Header{"Authorization": {"Bearer " + token}}
	v2 := func(h http.Header) *websocket.Conn {
		ws, _, err := websocket.Dial(ctx, s.url, &websocket.DialOptions{Subprotocols: []string{mux.SubprotocolResumable}, HTTPHeader: h})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { _ = ws.CloseNow() })
		return ws
	}
	w, err := mux.ClientHandshake(ctx, v2(hdr), mux.Hello{})
	if err != nil {
		t.Fatal(err)
	}
	bad := w.Secret
	bad[0] ^= 1
	if got, err := mux.ClientHandshake(ctx, v2(hdr), mux.Hello{ID: w.ID, Secret: bad}); err != nil || got.Status != mux.WelcomeDenied {
		t.Fatalf("wrong secret: %v %v", got.Status, err)
	}
	if _, _, err := websocket.Dial(ctx, s.url, &websocket.DialOptions{
		Subprotocols: []string{mux.SubprotocolResumable}, HTTPHeader: http.Header{"Authorization": {"Bearer x" + token}},
	}); err == nil {
		t.Fatal("a resume with another token was upgraded")
	}

	for _, must := range [][]string{
		{`msg="session resumed"`},
		{`msg="refused upgrade: missing or wrong token"`},
		{`msg="refused target: not allowed"`},
		{`msg="cannot connect target"`},
		{`msg="resume refused: wrong resume secret or credentials"`},
	} {
		if testutil.CountLines(logs.String(), must...) == 0 {
			t.Errorf("the server never logged %q: the test did not take that path\n%s", must, logs.String())
		}
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the server logged the token:\n%s", logs.String())
	}
	if strings.Contains(clientLogs.String(), token) {
		t.Errorf("the client logged the token:\n%s", clientLogs.String())
	}
	t.Logf("%d server and %d client log lines, none with the token",
		strings.Count(logs.String(), "\n"), strings.Count(clientLogs.String(), "\n"))
}

// countingTarget counts the connections it accepts, and echoes them.
type countingTarget struct {
	addr     string
	port     string
	accepted atomic.Int64
}

func newCountingTarget(t *testing.T) *countingTarget {
	t.Helper()
	ct := &countingTarget{}
	ct.addr = testutil.Serve(t, func(c net.Conn) {
		ct.accepted.Add(1)
		testutil.Echo(c)
	}).Addr
	_, ct.port, _ = net.SplitHostPort(ct.addr)
	return ct
}

// TestAllowlistSpellings: however a client spells a target, it reaches
// only what the allowlist names; spellings of an allowed target reach
// that target (the canonical form is what the server dials), and every
// other spelling is refused before any dial.
func TestAllowlistSpellings(t *testing.T) {
	tgt := newCountingTarget(t)
	p := tgt.port
	// ipOnly allows the target by address; a name that resolves to the
	// same address is a different target. byName allows it by name only.
	ipOnly, ipLogs := logServer(t, tgt.addr, func(c *server.Config) { c.Allow = []string{"db.invalid:5432"} })
	byName, nameLogs := logServer(t, tgt.addr, func(c *server.Config) { c.Allow = []string{"LocalHost.:" + p} })
	tests := []struct {
		srv     *testServer
		logs    *testutil.Buffer
		request string
		status  mux.Status // StatusOK: reaches the target
	}{
		{ipOnly, ipLogs, "127.0.0.1:" + p, mux.StatusOK},
		{ipOnly, ipLogs, "127.0.0.1:0" + p, mux.StatusOK},
		{ipOnly, ipLogs, "127.0.0.1:0000" + p, mux.StatusOK},
		{ipOnly, ipLogs, "[::ffff:127.0.0.1]:" + p, mux.StatusOK},
		{ipOnly, ipLogs, "[::ffff:7f00:1]:" + p, mux.StatusOK},
		// "127.0.0.1." is a name that spells the same address once its
		// root dot is dropped; the address is what is dialed.
		{ipOnly, ipLogs, "127.0.0.1.:" + p, mux.StatusOK},
		{ipOnly, ipLogs, "localhost:" + p, mux.StatusNotAllowed},
		{ipOnly, ipLogs, "LOCALHOST:" + p, mux.StatusNotAllowed},
		{ipOnly, ipLogs, "[::1]:" + p, mux.StatusNotAllowed},
		{ipOnly, ipLogs, "127.1:" + p, mux.StatusNotAllowed},
		{ipOnly, ipLogs, "0x7f.0.0.1:" + p, mux.StatusNotAllowed},
		{ipOnly, ipLogs, "0177.0.0.1:" + p, mux.StatusNotAllowed},
		{ipOnly, ipLogs, "2130706433:" + p, mux.StatusNotAllowed},
		{ipOnly, ipLogs, "127.0.0.2:" + p, mux.StatusNotAllowed},
		{ipOnly, ipLogs, "127.0.0.1%lo:" + p, mux.StatusNotAllowed},
		{ipOnly, ipLogs, "[::1%lo]:" + p, mux.StatusNotAllowed},
		{ipOnly, ipLogs, " 127.0.0.1:" + p, mux.StatusNotAllowed},
		{ipOnly, ipLogs, "127.0.0.1: " + p, mux.StatusNotAllowed},
		{ipOnly, ipLogs, "127.0.0.1:+" + p, mux.StatusNotAllowed},
		{ipOnly, ipLogs, "127.0.0.1:" + p + "\x00", mux.StatusNotAllowed},
		{ipOnly, ipLogs, "127.0.0.1\x00.evil:" + p, mux.StatusNotAllowed},
		{ipOnly, ipLogs, "127.0.0.1:" + p + "/x", mux.StatusNotAllowed},
		{ipOnly, ipLogs, "user@127.0.0.1:" + p, mux.StatusNotAllowed},
		// The allowlist names db.invalid:5432; what it resolves to is
		// not allowed by address, and the name is dialed as a name.
		{ipOnly, ipLogs, "127.0.0.1:5432", mux.StatusNotAllowed},
		{ipOnly, ipLogs, "DB.Invalid.:05432", mux.StatusUnreachable},
		{byName, nameLogs, "localhost:" + p, mux.StatusOK},
		{byName, nameLogs, "LOCALHOST:" + p, mux.StatusOK},
		{byName, nameLogs, "localhost.:0" + p, mux.StatusOK},
		{byName, nameLogs, "LocalHost.:" + p, mux.StatusOK},
		{byName, nameLogs, "localhost..:" + p, mux.StatusNotAllowed},
		{byName, nameLogs, "local%68ost:" + p, mux.StatusNotAllowed},
		{byName, nameLogs, "xn--localhost:" + p, mux.StatusNotAllowed},
	}
	sessions := map[*testServer]*client.Session{ipOnly: dial(t, clientConfig(ipOnly.url)), byName: dial(t, clientConfig(byName.url))}
	for _, tt := range tests {
		name := "by address " + tt.request
		if tt.srv == byName {
			name = "by name " + tt.request
		}
		name = strings.ReplaceAll(strings.ReplaceAll(name, p, "PORT"), "\x00", `\0`)
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), hardWait)
			defer cancel()
			before := tgt.accepted.Load()
			refusals := testutil.CountLines(tt.logs.String(), `msg="refused target: not allowed"`)
			c, err := sessions[tt.srv].OpenStream(ctx, tt.request)
			if tt.status == mux.StatusOK {
				if err != nil {
					t.Fatalf("OpenStream: %v", err)
				}
				defer c.Close()
				if _, err := echoCheck(c, 100); err != nil {
					t.Fatal(err)
				}
				if got := tgt.accepted.Load(); got != before+1 {
					t.Fatalf("the target accepted %d connections, want 1", got-before)
				}
				return
			}
			var se *mux.StreamError
			if !errors.As(err, &se) || se.Status != tt.status {
				t.Fatalf("OpenStream = %v, want status %q", err, tt.status)
			}
			if got := tgt.accepted.Load(); got != before {
				t.Fatalf("a refused target was dialed: the target accepted %d connections", got-before)
			}
			if tt.status == mux.StatusNotAllowed {
				// A control character in the target is shown escaped: it
				// reaches a terminal.
				// (What follows, the hint, TestStreamErrorText pins.)
				want := "server refused target " + strings.ReplaceAll(tt.request, "\x00", `\x00`) + ": not allowed ("
				if !strings.HasPrefix(err.Error(), want) {
					t.Fatalf("error text\n  %q\nwant it to start\n  %q", err, want)
				}
				// Past logflood's burst, refusals within the minute are
				// counted rather than logged.
				testutil.WaitFor(t, waitTimeout, "the refusal to be logged", func() bool {
					return testutil.CountLines(tt.logs.String(), `msg="refused target: not allowed"`) > refusals || refusals >= logflood.DefaultBurst
				})
			}
			if tt.status == mux.StatusUnreachable && !strings.Contains(err.Error(), "no such host db.invalid") {
				t.Fatalf("error %q does not name the canonical db.invalid", err)
			}
		})
	}
	if testutil.CountLines(ipLogs.String(), `msg="cannot connect target"`, "target=127.0.0.1:5432") != 0 {
		t.Errorf("the server dialed the address behind a name-only allowlist entry:\n%s", ipLogs.String())
	}
}

// A client that repeats a refused request at will gets a few log lines a
// minute, not one per request: the rest are counted (logflood).
func TestRefusalFloodIsCutInTheLog(t *testing.T) {
	tgt := testutil.EchoServer(t)
	srv, logs := logServer(t, tgt.Addr, nil)
	sess := dial(t, clientConfig(srv.url))
	for range 3 * logflood.DefaultBurst {
		ctx, cancel := context.WithTimeout(context.Background(), hardWait)
		_, err := sess.OpenStream(ctx, "127.0.0.1:1")
		cancel()
		var se *mux.StreamError
		if !errors.As(err, &se) || se.Status != mux.StatusNotAllowed {
			t.Fatalf("OpenStream = %v, want a refusal", err)
		}
	}
	line := `msg="refused target: not allowed"`
	testutil.WaitFor(t, waitTimeout, "the refusals to be logged", func() bool {
		return testutil.CountLines(logs.String(), line) >= logflood.DefaultBurst
	})
	if n := testutil.CountLines(logs.String(), line); n != logflood.DefaultBurst {
		t.Fatalf("%d refusal lines for %d refusals, want %d:\n%s", n, 3*logflood.DefaultBurst, logflood.DefaultBurst, logs.String())
	}
	if testutil.CountLines(logs.String(), line, "more=") != 1 {
		t.Errorf("the last refusal line let through does not say more are dropped:\n%s", logs.String())
	}
}

// A client sending yamux pings without end, and reading nothing, costs
// the server a bounded number of goroutines: yamux answered each from a
// goroutine of its own, 1.4 million and 4.8 GB in 20 s from one client
// (third_party/yamux/PATCHES.md). Other clients are served meanwhile.
func TestPingFloodIsBounded(t *testing.T) {
	s, _ := logServer(t, testutil.EchoServer(t).Addr, nil)
	ws := wsDial(t, s.url, mux.Subprotocol)
	before := runtime.NumGoroutine()
	msg := make([]byte, 0, 4096*12)
	for i := range 4096 {
		msg = append(msg, yamuxHeader(2, yamuxSYN, 0, uint32(i))...) // type 2: ping
	}
	ctx, cancel := context.WithTimeout(context.Background(), hardWait)
	defer cancel()
	for range 50 {
		if err := ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
			t.Fatalf("write pings: %v", err)
		}
	}
	// A stream opened behind them is answered once the server has read
	// every ping before it; it is never read here, so the check is the
	// goroutines.
	if err := ws.Write(ctx, websocket.MessageBinary, yamuxHeader(yamuxWindow, yamuxSYN, 1, 0)); err != nil {
		t.Fatal(err)
	}
	if !testutil.Poll(hardWait, func() bool { return s.srv.Stats().Streams == 1 }) {
		t.Fatal("the stream after the pings was not accepted")
	}
	if n := runtime.NumGoroutine() - before; n > 100 {
		t.Fatalf("%d goroutines more after 204800 pings whose answers are not read", n)
	}
	stillServes(t, s)
}
