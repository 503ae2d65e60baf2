package conformance

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/server"
)

// TestSpecRequestEdges checks §5.1–§5.3 on requests a second client may
// well send: a target field that is empty, a spelling to canonicalise, a
// fields length over the limit, a target that is not host:port, one not
// allowed in an odd spelling, and one that refuses.
func TestSpecRequestEdges(t *testing.T) {
	ctx := testCtx(t)
	echo := testutil.EchoServer(t)
	_, port, _ := net.SplitHostPort(echo.Addr)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	_ = ln.Close()
	_, url := testutil.SandmuxServer(t, func(c *server.Config) {
		c.Target = echo.Addr
		c.Allow = []string{"localhost:" + port, down}
	})
	s := dialV1(t, ctx, url, nil)

	// An empty target value is an absent one: the default target.
	st, err := s.open(header(1, 0, tlv{tagTarget, nil}))
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := readReply(streamReader{ctx, st}); err != nil || rep.Status != 0 || rep.Target != echo.Addr {
		t.Errorf("empty target: %+v, %v; want OK naming the default (§5.1)", rep, err)
	}
	_ = st.closeWrite()

	// Host names: lower case, no trailing dot, not resolved for the check.
	st = openOK(t, ctx, s, "LocalHost.:"+port, "localhost:"+port)
	echoRoundTrip(t, ctx, st, []byte("by name"))
	_ = st.closeWrite()

	// A fields length over 4092 is refused from the prefix alone: no
	// more bytes are sent, and the answer must not wait for them.
	st, err = s.open([]byte{1, 0, 0x0f, 0xfd})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := readReply(streamReader{ctx, st}); err != nil || rep.Status != 4 {
		t.Errorf("fields length 4093: %+v, %v; want status 4 (§5)", rep, err)
	}
	_ = st.closeWrite()

	for _, target := range []string{"no-port", "[0:0::1]:5432", "127.0.0.1:0", "127.0.0.1:65536"} {
		st, err = s.open(request(target))
		if err != nil {
			t.Fatal(err)
		}
		if rep, err := readReply(streamReader{ctx, st}); err != nil || rep.Status != 1 || rep.Target != target {
			t.Errorf("%q: %+v, %v; want status 1 naming the target as requested (§5.3)", target, rep, err)
		}
		_ = st.closeWrite()
	}

	st, err = s.open(request(down))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := readReply(streamReader{ctx, st})
	wantPrefix := header(1, 2, tlv{tagTarget, []byte(down)})
	if err != nil || rep.Status != 2 || rep.Target != down || !strings.Contains(rep.Message, "connection refused") ||
		!bytes.HasPrefix(rep.Raw[4:], wantPrefix[4:]) {
		t.Errorf("a target that refuses: %+v, %v; want status 2, the target first, then the detail (§5.6)", rep, err)
	}
	_ = st.closeWrite()
}

// TestSpecV2ProtocolErrors: an unknown message type, a text message, an
// empty one or one over 1 MiB ends a v2 session for good (§9.1), and a
// HELLO that is malformed or late is closed with 1002 (§9.4).
func TestSpecV2ProtocolErrors(t *testing.T) {
	ctx := testCtx(t)
	echo := testutil.EchoServer(t)
	_, url := testutil.SandmuxServer(t, func(c *server.Config) {
		c.Target = echo.Addr
		c.Mux.HeaderTimeout = 200 * time.Millisecond
	})
	bad := []struct {
		name string
		typ  websocket.MessageType
		msg  []byte
	}{
		{"type 5", websocket.MessageBinary, []byte{5}},
		{"text", websocket.MessageText, []byte{msgData, 'x'}},
		{"empty", websocket.MessageBinary, nil},
		{"DATA over 1 MiB", websocket.MessageBinary, bigData(1 << 20)},
		{"DATA far over 1 MiB", websocket.MessageBinary, bigData(2 << 20)},
		{"ACK of 7 bytes", websocket.MessageBinary, make([]byte, 8)},
	}
	bad[5].msg[0] = msgAck
	for _, b := range bad {
		c, _, err := dial(ctx, url, nil, "sandmux.v2")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Write(ctx, websocket.MessageBinary, hello([16]byte{}, [32]byte{}, 0)); err != nil {
			t.Fatal(err)
		}
		m, err := readMsg(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		w, err := parseWelcome(m)
		if err != nil {
			t.Fatal(err)
		}
		// The server may drop the WebSocket while a big message is
		// still being written: the write fails then, as it should.
		_ = c.Write(ctx, b.typ, b.msg)
		for err == nil { // the server's ACKs, until it drops the WebSocket
			_, _, err = c.Read(ctx)
		}
		c.CloseNow()
		// An attempt that races the server's end of the session may be
		// dropped without a WELCOME, or even welcomed and then dropped
		// (the server notices the oversized message only after its
		// WebSocket library has sent the 1009 close); either is retried,
		// as any failure, and the session must stay ended.
		var w2 welcome
		testutil.WaitFor(t, 5*time.Second, b.name+": status 2 for a resume", func() bool {
			c2, wl, err := resumeHello(ctx, url, nil, hello(w.ID, w.Secret, 0))
			if err != nil {
				return false
			}
			defer c2.CloseNow()
			w2 = wl
			if wl.Status != welcomeResumed {
				return true
			}
			for err == nil { // it must be dropped
				_, _, err = c2.Read(ctx)
			}
			return false
		})
		if w2.Status != welcomeUnknown {
			t.Errorf("%s: the session was resumable after it (status %d), want it ended for good (§9.1)", b.name, w2.Status)
		}
	}

	for _, m := range [][]byte{hello([16]byte{}, [32]byte{}, 0)[:56], nil} {
		c, _, err := dial(ctx, url, nil, "sandmux.v2")
		if err != nil {
			t.Fatal(err)
		}
		if m != nil {
			if err := c.Write(ctx, websocket.MessageBinary, m); err != nil {
				t.Fatal(err)
			}
		}
		_, _, err = c.Read(ctx)
		// A late HELLO's WebSocket is dropped: the server's read of it
		// timed out, which ends the connection at once.
		if m == nil && err != nil && websocket.CloseStatus(err) == -1 {
			continue
		}
		if websocket.CloseStatus(err) != websocket.StatusProtocolError {
			t.Errorf("HELLO % x: %v, want close 1002 (§9.4)", m[:min(len(m), 4)], err)
		}
		c.CloseNow()
	}
}

// bigData is a DATA message of 1+n bytes whose payload is one yamux data
// frame on a stream nobody opened, which yamux skips in one read.
func bigData(n int) []byte {
	m := append([]byte{msgData}, frameHeader{Type: typeData, Stream: 7, Length: 0xFFFFFFFF}.bytes()...)
	return append(m, make([]byte, n-12)...)
}
