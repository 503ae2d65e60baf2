package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/server"
)

// testCtx bounds a test against a hang, far beyond the second or so
// each takes on an idle machine: a loaded one is many times slower.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// digestServer is a target that reads to its client's EOF, then answers
// the SHA-256 of what it read and closes: it sends only after the
// half-close of §6 reached it.
func digestServer(t *testing.T) *testutil.Server {
	return testutil.Serve(t, func(c net.Conn) {
		h := sha256.New()
		if _, err := io.Copy(h, c); err != nil {
			return
		}
		_, _ = c.Write(h.Sum(nil))
	})
}

// dialV1 upgrades offering only sandmux.v1 and starts a yamux session.
func dialV1(t *testing.T, ctx context.Context, url string, hdr http.Header) *miniSession {
	t.Helper()
	c, resp, err := dial(ctx, url, hdr, "sandmux.v1")
	if err != nil {
		t.Fatalf("v1 upgrade: %v", err)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "sandmux.v1" {
		t.Fatalf("server picked %q, want sandmux.v1 (§1.2)", got)
	}
	s := newMiniSession(newWSStream(c))
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openOK opens a stream to target and requires an OK reply naming want.
func openOK(t *testing.T, ctx context.Context, s *miniSession, target, want string) *miniStream {
	t.Helper()
	st, err := s.open(request(target))
	if err != nil {
		t.Fatalf("open %q: %v", target, err)
	}
	rep, err := readReply(streamReader{ctx, st})
	if err != nil {
		t.Fatalf("reply to %q: %v", target, err)
	}
	if rep.Status != 0 || rep.Target != want || rep.Message != "" {
		t.Fatalf("reply to %q = %+v, want status 0 naming %q and no message (§5.3)", target, rep, want)
	}
	return st
}

// echoRoundTrip writes data and reads it back byte for byte while writing.
func echoRoundTrip(t *testing.T, ctx context.Context, st *miniStream, data []byte) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- st.write(ctx, data) }()
	got := make([]byte, len(data))
	if err := st.readFull(ctx, got); err != nil {
		t.Fatalf("echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("echo: the bytes differ")
	}
}

// TestSpecV1StreamTrace opens the default target as §5.6 shows, checks
// the server's frames against the trace, moves 1 MiB each way (more
// than the initial window, so the windows of §4 must work) and ends with
// the half-closes of §6.
func TestSpecV1StreamTrace(t *testing.T) {
	ctx := testCtx(t)
	_, url := testutil.SandmuxServer(t, nil)
	s := dialV1(t, ctx, url, nil)

	st, err := s.open(request(""))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := readReply(streamReader{ctx, st})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != 0 || rep.Target == "" {
		t.Fatalf("reply = %+v, want OK naming the default target (§5.3)", rep)
	}
	fr := st.s.framesOf(st.id)
	if len(fr) < 2 {
		t.Fatalf("server frames on stream 1: %+v", fr)
	}
	if h := fr[0].frameHeader; h != (frameHeader{Type: typeWindow, Flags: flagACK, Stream: 1, Length: 0x003C0000}) {
		t.Errorf("server's first frame = %+v, want window update, ACK, +4 MiB-256 KiB, a first stream's spare start (§4, §5.6)", h)
	}
	if h := fr[1]; h.Type != typeData || h.Flags != 0 || !bytes.Equal(h.Body, rep.Raw) {
		t.Errorf("server's second frame = %+v, want the reply alone in one data frame (§5.6)", h)
	}

	echoRoundTrip(t, ctx, st, randomBytes(t, 1<<20))
	if err := st.closeWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := st.readAll(ctx)
	if err != nil || len(rest) != 0 {
		t.Fatalf("after our FIN: %d bytes, %v; want a clean end (the server's FIN, §6)", len(rest), err)
	}
	fr = st.s.framesOf(st.id)
	if h := fr[len(fr)-1].frameHeader; h != (frameHeader{Type: typeWindow, Flags: flagFIN, Stream: 1}) {
		t.Errorf("server's last frame = %+v, want window update, FIN, length 0 (§5.6)", h)
	}
	if err := s.ping(ctx, 7); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

// TestSpecV1HalfClose sends an upload, half-closes and reads the answer
// the target sends only after it saw EOF (§6); the request names the
// target in a spelling the server canonicalises (§5.2).
func TestSpecV1HalfClose(t *testing.T) {
	ctx := testCtx(t)
	digest := digestServer(t)
	_, port, _ := net.SplitHostPort(digest.Addr)
	_, url := testutil.SandmuxServer(t, func(c *server.Config) { c.Allow = []string{digest.Addr} })
	s := dialV1(t, ctx, url, nil)

	for _, spelling := range []string{"127.0.0.1:0" + port, "[::ffff:127.0.0.1]:" + port} {
		// The upload and the FIN go right behind the request, before the
		// reply (§5.4 allows it).
		st, err := s.open(request(spelling))
		if err != nil {
			t.Fatal(err)
		}
		data := randomBytes(t, 300<<10)
		if err := st.write(ctx, data); err != nil {
			t.Fatal(err)
		}
		if err := st.closeWrite(); err != nil {
			t.Fatal(err)
		}
		rep, err := readReply(streamReader{ctx, st})
		if err != nil || rep.Status != 0 || rep.Target != digest.Addr {
			t.Fatalf("%s: reply %+v, %v; want OK naming %s (§5.2)", spelling, rep, err, digest.Addr)
		}
		got, err := st.readAll(ctx)
		if err != nil {
			t.Fatalf("%s: %v", spelling, err)
		}
		want := sha256.Sum256(data)
		if !bytes.Equal(got, want[:]) {
			t.Fatalf("%s: target answered %x, want %x", spelling, got, want)
		}
	}
}

// TestSpecV1Refusals checks the replies of §5.3 and §5.6 byte for byte,
// and that a refusal leaves the session usable.
func TestSpecV1Refusals(t *testing.T) {
	ctx := testCtx(t)
	echo := testutil.EchoServer(t)
	_, url := testutil.SandmuxServer(t, func(c *server.Config) { c.Target = echo.Addr })
	s := dialV1(t, ctx, url, nil)

	want, _ := hex.DecodeString("0101001001000d31302e302e302e313a35343332") // §5.6
	st, err := s.open(request("10.0.0.1:5432"))
	if err != nil {
		t.Fatal(err)
	}
	// §5.4: data sent before a refusal is discarded.
	if err := st.write(ctx, []byte("SSH-2.0-early\r\n")); err != nil {
		t.Fatal(err)
	}
	rep, err := readReply(streamReader{ctx, st})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rep.Raw, want) {
		t.Errorf("refusal = % x, want % x (§5.6)", rep.Raw, want)
	}
	if rest, err := st.readAll(ctx); err != nil || len(rest) > 0 {
		t.Errorf("after the refusal: %q, %v; want the server's FIN (§5.3)", rest, err)
	}
	if err := st.closeWrite(); err != nil {
		t.Fatal(err)
	}

	bad := []struct {
		name string
		req  []byte
	}{
		{"request flags", header(1, 1)},
		{"header version 2", header(2, 0)},
		{"target twice", header(1, 0, tlv{tagTarget, []byte("a:1")}, tlv{tagTarget, []byte("a:1")})},
		{"target not UTF-8", header(1, 0, tlv{tagTarget, []byte{0xff, ':', '2'}})},
		{"entry past the end", []byte{1, 0, 0, 2, 1, 0}},
	}
	for _, b := range bad {
		st, err := s.open(b.req)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := readReply(streamReader{ctx, st})
		if err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
		if rep.Status != 4 {
			t.Errorf("%s: status %d, want 4 bad request (§5)", b.name, rep.Status)
		}
		_ = st.closeWrite()
	}

	// The session is unaffected (§5.3).
	st = openOK(t, ctx, s, "", echo.Addr)
	echoRoundTrip(t, ctx, st, []byte("still here"))
}

// TestSpecV1UnknownTags sends a request with unknown tags and a message
// around the target; the server must skip them (§5.1).
func TestSpecV1UnknownTags(t *testing.T) {
	ctx := testCtx(t)
	_, url := testutil.SandmuxServer(t, nil)
	s := dialV1(t, ctx, url, nil)
	st, err := s.open(header(1, 0,
		tlv{0x7f, []byte("later")},
		tlv{tagMessage, []byte("hi")},
		tlv{0x03, nil},
		tlv{0x7f, []byte("again")},
	))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := readReply(streamReader{ctx, st})
	if err != nil || rep.Status != 0 {
		t.Fatalf("reply %+v, %v; want OK", rep, err)
	}
	echoRoundTrip(t, ctx, st, []byte("after the header, the stream"))
}
