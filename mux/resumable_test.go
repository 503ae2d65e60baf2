package mux

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsPair returns the two ends of one loopback WebSocket, closed when the
// test ends.
func wsPair(t *testing.T) (cli, srv *websocket.Conn) {
	t.Helper()
	url, accepted := wsServer(t)
	return wsDial(t, url, accepted)
}

// wsServer serves WebSocket upgrades on loopback until the test ends and
// hands each accepted connection over.
func wsServer(t *testing.T) (url string, accepted <-chan *websocket.Conn) {
	t.Helper()
	ch := make(chan *websocket.Conn, 1)
	hold := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		ch <- ws
		<-hold
	}))
	t.Cleanup(func() { close(hold); hs.CloseClientConnections(); hs.Close() })
	return "ws" + strings.TrimPrefix(hs.URL, "http"), ch
}

// wsDial dials url and pairs the connection with the server's end.
func wsDial(t *testing.T, url string, accepted <-chan *websocket.Conn) (cli, srv *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	t.Cleanup(func() { _ = c.CloseNow(); _ = s.CloseNow() })
	return c, s
}

func testResumable(t *testing.T) *Resumable {
	t.Helper()
	cfg := DefaultResumeConfig()
	cfg.Grace = time.Minute
	r, err := NewResumable(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// waitBlockedIn polls, until a deadline, for a goroutine waiting on a
// mutex inside fn.
func waitBlockedIn(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "sync.(*Mutex).Lock") && strings.Contains(g, fn) {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no goroutine blocked on a mutex in %s", fn)
}

// Two Attaches overlap, as when a client gives up on a slow WELCOME and
// redials: B finds nothing to drop while A is still in its welcome, then
// waits for A. A's attachment must end when B's replaces it, or the
// server's handler holding A waits for the session's whole life.
func TestAttachOverlapping(t *testing.T) {
	r := testResumable(t)
	_, a := wsPair(t)
	_, b := wsPair(t)
	inWelcome, release := make(chan struct{}), make(chan struct{})
	type result struct {
		lost <-chan struct{}
		err  error
	}
	aDone, bDone := make(chan result, 1), make(chan result, 1)
	go func() {
		lost, err := r.Attach(Link{WS: a}, 0, func(uint64) error { close(inWelcome); <-release; return nil })
		aDone <- result{lost, err}
	}()
	<-inWelcome
	go func() {
		lost, err := r.Attach(Link{WS: b}, 0, nil)
		bDone <- result{lost, err}
	}()
	waitBlockedIn(t, "(*Resumable).Attach")
	close(release)
	ra, rb := <-aDone, <-bDone
	if ra.err != nil || rb.err != nil {
		t.Fatalf("attach: %v, %v", ra.err, rb.err)
	}
	select {
	case <-ra.lost:
	case <-time.After(5 * time.Second):
		t.Fatal("A was replaced by B, but A's lost channel is still open")
	}
	select {
	case <-rb.lost:
		t.Fatal("B, the attachment now in use, is reported lost")
	default:
	}
}

// A Resumable that fails while Attach writes the WELCOME (the grace ran
// out, or Close) must not attach: the peer would hold a session that no
// longer exists.
func TestAttachAfterFail(t *testing.T) {
	r := testResumable(t)
	_, s := wsPair(t)
	inWelcome, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := r.Attach(Link{WS: s}, 0, func(uint64) error { close(inWelcome); <-release; return nil })
		done <- err
	}()
	<-inWelcome
	failed := errors.New("grace ran out")
	r.Fail(failed)
	close(release)
	if err := <-done; !errors.Is(err, failed) {
		t.Fatalf("Attach on a failed Resumable: %v, want %v", err, failed)
	}
	if r.Attached() {
		t.Fatal("a failed Resumable is attached")
	}
}

// An ACK whose payload is not exactly 8 bytes ends the session (spec
// §9.1), instead of failing the next read and resuming over and over.
func TestMalformedAckEndsSession(t *testing.T) {
	for _, payload := range [][]byte{make([]byte, 9), make([]byte, 7), nil} {
		r := testResumable(t)
		peer, s := wsPair(t)
		if _, err := r.Attach(Link{WS: s}, 0, nil); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := peer.Write(ctx, websocket.MessageBinary, append([]byte{msgAck}, payload...)); err != nil {
			t.Fatal(err)
		}
		// The reader is what reads control messages.
		read := make(chan error, 1)
		go func() { _, err := r.Read(make([]byte, 1)); read <- err }()
		select {
		case <-read:
		case <-ctx.Done():
			_ = r.Close()
			<-read
			t.Fatalf("ACK with %d payload bytes: the session did not end", len(payload))
		}
		cancel()
		if err := r.Err(); !errors.Is(err, ErrResumeProtocol) {
			t.Fatalf("ACK with %d payload bytes: %v, want %v", len(payload), err, ErrResumeProtocol)
		}
	}
}

// A frame that would wait for acknowledgements is reported as such to
// yamux's send loop, which sends small frames meanwhile; small frames
// may exceed the limit by smallSlack, and an acknowledgement wakes the
// loop.
func TestRoomForSmallFramesBesideHeldBulk(t *testing.T) {
	r := testResumable(t)
	r.mu.Lock()
	limit := r.win.limit()
	r.sent = uint64(limit) // as if a full limit were unacknowledged
	r.mu.Unlock()
	select {
	case <-r.RoomChanged(): // drain any earlier signal
	default:
	}
	if r.Room(64 << 10) {
		t.Fatal("room for a bulk frame beyond the in-flight limit")
	}
	if !r.Room(yamuxHeaderSize + 64) {
		t.Fatal("no room for a keystroke within the slack")
	}
	if r.Room(smallSlack + 1) {
		t.Fatal("room beyond the slack")
	}
	if err := r.onAck(64 << 10); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.RoomChanged():
	default:
		t.Fatal("an acknowledgement did not signal RoomChanged")
	}
	if !r.Room(64 << 10) {
		t.Fatal("no room for a bulk frame after its room was acknowledged")
	}
	r.Fail(errors.New("gone"))
	if !r.Room(maxReplayMessage) {
		t.Fatal("a failed Resumable holds frames back instead of letting their writes fail")
	}
}
