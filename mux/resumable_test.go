package mux

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	blocked := func() bool {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "sync.(*Mutex).Lock") && strings.Contains(g, fn) {
				return true
			}
		}
		return false
	}
	if !pollUntil(5*time.Second, blocked) {
		t.Fatalf("no goroutine blocked on a mutex in %s", fn)
	}
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

// A malformed message ends the session for good (spec §9.1) instead of
// detaching it, which would have the peer resume and send it again: an
// ACK whose payload is not exactly 8 bytes, an empty message (no type)
// and one over the 1 MiB limit (whose first MiB reached the reader).
func TestMalformedMessageEndsSession(t *testing.T) {
	big := make([]byte, 1+2<<20)
	big[0] = msgData
	for name, msg := range map[string][]byte{
		"ACK with 9 bytes": append([]byte{msgAck}, make([]byte, 9)...),
		"ACK with 7 bytes": append([]byte{msgAck}, make([]byte, 7)...),
		"ACK with none":    {msgAck},
		"empty message":    {},
		"2 MiB of DATA":    big,
	} {
		r, peer, read := readingResumable(t)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		go func() { _ = peer.Write(ctx, websocket.MessageBinary, msg) }()
		select {
		case <-read:
		case <-ctx.Done():
			_, cause := r.Detachment()
			_ = r.Close()
			<-read
			t.Fatalf("%s: the session did not end (detached: %v)", name, cause)
		}
		cancel()
		if err := r.Err(); !errors.Is(err, ErrResumeProtocol) {
			t.Fatalf("%s: %v, want %v", name, err, ErrResumeProtocol)
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

// §9.6: a side that ends the session on purpose sends END. A session
// that ends while a resume's WELCOME is being written (Close, a server's
// shutdown, the grace running out) has told the peer "resumed" already:
// END must follow, or the peer sees a dropped connection and redials a
// session the server ended on purpose.
func TestCloseDuringResumeWelcomeSendsEnd(t *testing.T) {
	r := testResumable(t)
	peer, s := wsPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs := make(chan []byte, 4)
	go func() {
		defer close(msgs)
		for {
			_, b, err := peer.Read(ctx)
			if err != nil {
				return
			}
			msgs <- b
		}
	}()
	closed := make(chan struct{})
	welcome := func(recv uint64) error {
		if err := WriteWelcome(ctx, s, Welcome{Status: WelcomeResumed, Received: recv, Grace: time.Minute}); err != nil {
			return err
		}
		go func() { _ = r.Close(); close(closed) }()
		<-r.Done()
		return nil
	}
	if _, err := r.Attach(Link{WS: s}, 0, welcome); err == nil {
		t.Fatal("Attach succeeded on a closed Resumable")
	}
	_ = s.CloseNow() // what server/resume.go does with a failed Attach
	<-closed
	var w Welcome
	if err := w.UnmarshalBinary(<-msgs); err != nil || w.Status != WelcomeResumed {
		t.Fatalf("welcome %+v, %v", w, err)
	}
	if b := <-msgs; len(b) != 1 || b[0] != msgEnd {
		t.Errorf("after its welcome the peer got %x, want END: it would redial a session the server ended", b)
	}
	for range msgs {
	}
}

// A grace period that runs out after failed attempts to resume says why
// the last one failed: "could not be resumed within 2s: failed to get
// reader: failed to read frame header: EOF" named neither the cause nor
// anything to check.
func TestGraceEndNamesLastAttempt(t *testing.T) {
	cfg := DefaultResumeConfig()
	// Long enough that a stalled test cannot miss noting the attempt.
	cfg.Grace = 2 * time.Second
	r, err := NewResumable(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	cli, _ := wsPair(t)
	lost, err := r.Attach(Link{WS: cli}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Drop(fmt.Errorf("failed to get reader: %w", io.EOF))
	<-lost
	refused := errors.New("ws://h: connection refused")
	r.NoteAttempt(refused)
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the grace period did not end the session")
	}
	var nr *NotResumedError
	if !errors.As(r.Err(), &nr) || !errors.Is(nr.Last, refused) {
		t.Fatalf("session ended with %v, want a NotResumedError naming the last attempt", r.Err())
	}
	if want := "could not be resumed within 2s (lost: the connection was closed; last attempt: ws://h: connection refused)"; nr.Error() != want {
		t.Errorf("text %q", nr.Error())
	}
}
