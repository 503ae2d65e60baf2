package mux

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"
)

func TestMaskCopy(t *testing.T) {
	key := [4]byte{0x11, 0x22, 0x44, 0x88}
	for _, n := range []int{0, 1, 3, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100, maskBlock - 1, maskBlock, maskBlock + 1, 4*maskBlock + 13, 70001} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(i * 31)
		}
		for pos := range 6 {
			want := make([]byte, n)
			for i := range src {
				want[i] = src[i] ^ key[(pos+i)%4]
			}
			got := make([]byte, n)
			maskCopy(got, src, key, pos)
			if !bytes.Equal(got, want) {
				t.Fatalf("maskCopy(%d bytes, pos %d) differs from byte-wise masking", n, pos)
			}
			maskCopy(got, got, key, pos) // in place, and its own inverse
			if !bytes.Equal(got, src) {
				t.Fatalf("masking %d bytes twice at pos %d did not restore them", n, pos)
			}
		}
	}
}

// BenchmarkMaskCopy masks a largest data message as a client builds it:
// the one copy of an upload's bytes in user space on that side.
func BenchmarkMaskCopy(b *testing.B) {
	src, dst := make([]byte, 256<<10), make([]byte, 256<<10)
	b.SetBytes(int64(len(src)))
	for range b.N {
		maskCopy(dst, src, [4]byte{1, 2, 3, 4}, 1)
	}
}

func TestPutFrameHeader(t *testing.T) {
	for _, masked := range []bool{false, true} {
		for _, n := range []int{0, 1, 125, 126, 65535, 65536, 70000} {
			want := frame(n, masked) // bufconn_test.go: key 1, 2, 3, 4
			want = want[:frameHeaderLen(want)]
			room := make([]byte, frameRoom)
			got := room[putFrameHeader(room, n, masked, [4]byte{1, 2, 3, 4}):]
			if !bytes.Equal(got, want) {
				t.Errorf("header for %d bytes, masked %v = % x, want % x", n, masked, got, want)
			}
		}
	}
}

// TestChunkPlain: a masked chunk is replayed (Attach) from its unmasked
// bytes, whatever offset the peer resumes at.
func TestChunkPlain(t *testing.T) {
	head, part := []byte("0123456789ab"), bytes.Repeat([]byte("xyz"), 7000)
	want := append(append([]byte{msgData}, head...), part...)
	for _, client := range []bool{false, true} {
		c := buildChunk(head, part, len(head)+len(part), Link{Frames: &BufConn{}, Client: client})
		if c.frame == nil || c.masked != client {
			t.Fatalf("client %v: frame built %v, masked %v", client, c.frame != nil, c.masked)
		}
		if !bytes.Equal(c.frame[len(c.frame)-len(c.msg):], c.msg) {
			t.Fatalf("client %v: the frame does not end with the message", client)
		}
		for _, from := range []int{0, 1, 2, 13, 14, 4097, len(want) - 1} {
			if got := c.plain(from); !bytes.Equal(got, want[from:]) {
				t.Fatalf("client %v: plain(%d) is not the message's bytes from %d", client, from, from)
			}
		}
	}
}

// TestWriteFrameWaitsForTheLibrarysFrame: a frame built in place never
// lands inside one the library is writing, and none follows the
// library's close frame, a failed write or Close.
func TestWriteFrameWaitsForTheLibrarysFrame(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &writeRecorder{}
		bc := NewBufConn(rec)
		if err := bc.WriteFrame(frame(3, true)); !errors.Is(err, errNotFraming) {
			t.Fatalf("WriteFrame before Framing: %v, want errNotFraming", err)
		}
		bc.Framing()
		lib, own := frame(100, true), frame(5, true)
		if _, err := bc.Write(lib[:10]); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- bc.WriteFrame(own) }()
		synctest.Wait()
		if n := len(rec.writes); n != 0 {
			t.Fatalf("%d writes while the library's frame was part-written", n)
		}
		if _, err := bc.Write(lib[10:]); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("WriteFrame: %v", err)
		}
		if len(rec.writes) != 2 || !bytes.Equal(rec.writes[0], lib) || !bytes.Equal(rec.writes[1], own) {
			t.Fatalf("writes %v, want the library's frame then the built one", sizes(rec.writes))
		}

		// Close wakes a WriteFrame waiting behind a part-written frame.
		if _, err := bc.Write(lib[:4]); err != nil {
			t.Fatal(err)
		}
		go func() { done <- bc.WriteFrame(own) }()
		synctest.Wait()
		if err := bc.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("WriteFrame across Close: %v, want net.ErrClosed", err)
		}
	})

	rec := &writeRecorder{}
	bc := NewBufConn(rec)
	bc.Framing()
	closeFrame := []byte{0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2}
	if _, err := bc.Write(closeFrame); err != nil {
		t.Fatal(err)
	}
	if err := bc.WriteFrame(frame(5, true)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteFrame after the close frame: %v, want net.ErrClosed", err)
	}
	if len(rec.writes) != 1 {
		t.Fatalf("%d writes, want only the close frame", len(rec.writes))
	}

	// A failed write may have cut its frame short: nothing follows it,
	// the library's frames included.
	fc := &failingConn{}
	bc = NewBufConn(fc)
	bc.Framing()
	if err := bc.WriteFrame(frame(5, true)); !errors.Is(err, errBroken) {
		t.Fatalf("WriteFrame on a broken connection: %v, want errBroken", err)
	}
	if err := bc.WriteFrame(frame(5, true)); !errors.Is(err, errBroken) {
		t.Fatalf("WriteFrame after a failed write: %v, want errBroken", err)
	}
	if _, err := bc.Write(frame(5, true)); !errors.Is(err, errBroken) {
		t.Fatalf("the library's write after a failed write: %v, want errBroken", err)
	}
	if fc.attempts != 1 {
		t.Fatalf("%d writes attempted, want 1: none after the failure", fc.attempts)
	}
}

var errBroken = errors.New("broken pipe, for the test")

// failingConn fails every write.
type failingConn struct {
	net.Conn
	attempts int
}

func (f *failingConn) Write([]byte) (int, error) {
	f.attempts++
	return 0, errBroken
}

// TestBuiltFramesBesideTheLibrarys: frames built in place, masked by the
// client and not by the server, are read by coder/websocket as the
// messages they carry, while the library writes its own messages on the
// same connection at the same time.
func TestBuiltFramesBesideTheLibrarys(t *testing.T) {
	// 30 messages of each kind each way, of sizes from 13 bytes to the
	// largest replayable message, interleave the two writers many times
	// over; 60 took 40-70 s on one CPU shared with ten busy processes.
	const each = 30
	// Only against a hang: 20 s, where it was, ran out on that CPU.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srvErr := make(chan error, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			srvErr <- err
			return
		}
		defer ws.CloseNow()
		bc := BufConnFrom(r.Context())
		bc.Framing()
		srvErr <- exchange(ctx, Link{WS: ws, Frames: bc}, each)
	}))
	srv.Listener = Listener{srv.Listener}
	srv.Config.ConnContext = ConnContext
	srv.Start()
	defer srv.Close()

	l := dialFramed(ctx, t, srv.URL)
	defer l.WS.CloseNow()
	if err := exchange(ctx, l, each); err != nil {
		t.Fatalf("client: %v", err)
	}
	if err := <-srvErr; err != nil {
		t.Fatalf("server: %v", err)
	}
}

// dialFramed dials a WebSocket to the httptest server at url through a
// BufConn, as the client package does, and returns it as a client Link.
func dialFramed(ctx context.Context, t *testing.T, url string) Link {
	t.Helper()
	var bc *BufConn
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		bc = WrapConn(c)
		return bc, nil
	}}}
	defer hc.CloseIdleConnections()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http"), &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	bc.Framing()
	return Link{WS: ws, Frames: bc, Client: true}
}

// exchange sends each built and each library message from two goroutines
// at once while reading the peer's 2×each, and checks every one.
func exchange(ctx context.Context, l Link, each int) error {
	l.WS.SetReadLimit(2 << 20)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range each {
			p := testPayload(msgData, i)
			c := buildChunk(p[1:13], p[13:], len(p)-1, l)
			if err := l.Frames.WriteFrame(c.frame); err != nil {
				errs <- fmt.Errorf("built message %d: %w", i, err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := range each {
			if err := l.WS.Write(ctx, websocket.MessageBinary, testPayload(0xee, i)); err != nil {
				errs <- fmt.Errorf("library message %d: %w", i, err)
				return
			}
		}
	}()
	next := map[byte]int{}
	for range 2 * each {
		_, b, err := l.WS.Read(ctx)
		if err != nil {
			errs <- fmt.Errorf("read: %w", err)
			break
		}
		if len(b) < 13 || !bytes.Equal(b, testPayload(b[0], next[b[0]])) {
			errs <- fmt.Errorf("message of kind %#x number %d arrived corrupt (%d bytes)", b[0], next[b[0]], len(b))
			break
		}
		next[b[0]]++
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// testPayload is message i of a kind: its kind, its number and length,
// then bytes that depend on both. Sizes run from 13 bytes to about the
// largest message, across every frame-length encoding.
func testPayload(kind byte, i int) []byte {
	n := 13 + (i*i*997)%(maxReplayMessage-12)
	if i%5 == 0 {
		n = 13 + i
	}
	b := make([]byte, n)
	b[0] = kind
	binary.BigEndian.PutUint64(b[1:], uint64(i))
	binary.BigEndian.PutUint32(b[9:], uint32(n))
	for j := 13; j < n; j++ {
		b[j] = byte(j*7 + i + int(kind))
	}
	return b
}
