package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
)

// fakeResumableServer accepts sandmux.v2 WebSockets and runs serve on each
// (after reading its HELLO); upgrades counts them.
func fakeResumableServer(t *testing.T, serve func(ctx context.Context, ws *websocket.Conn)) (url string, upgrades *atomic.Int64) {
	t.Helper()
	upgrades = new(atomic.Int64)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{mux.SubprotocolResumable}})
		if err != nil {
			return
		}
		defer ws.CloseNow()
		upgrades.Add(1)
		ctx, cancel := context.WithTimeout(r.Context(), waitTimeout)
		defer cancel()
		if _, err := mux.ReadHello(ctx, ws); err != nil {
			t.Errorf("read hello: %v", err)
			return
		}
		ws.SetReadLimit(1 << 20)
		serve(ctx, ws)
	})
	return wsURL(quietServer(t, h, false).URL), upgrades
}

// readData reads messages until a DATA one longer than minLen bytes,
// which it reports.
func readData(ctx context.Context, ws *websocket.Conn, minLen int) bool {
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return false
		}
		if len(b) > minLen && b[0] == 0x00 {
			return true
		}
	}
}

// yamuxControl is the size of a DATA message carrying one bare yamux
// frame (a ping, a window update): the type byte and a 12-byte header.
const yamuxControl = 13

// TestNewSessionDoesNotWaitForWelcome: a new session's first stream
// leaves with its HELLO, a round trip before the WELCOME comes back
// (spec §9.2). This server answers only once it has the stream's header,
// the first DATA longer than a bare yamux frame.
func TestNewSessionDoesNotWaitForWelcome(t *testing.T) {
	const grace = 42 * time.Second
	url, _ := fakeResumableServer(t, func(ctx context.Context, ws *websocket.Conn) {
		if !readData(ctx, ws, yamuxControl) {
			t.Error("no stream data before the WELCOME: the client waited for it")
			return
		}
		_ = mux.WriteWelcome(ctx, ws, mux.Welcome{Status: mux.WelcomeNew, ID: [mux.SessionIDSize]byte{1}, Grace: grace})
		for readData(ctx, ws, 0) { // until the client closes
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	sess := dial(t, testConfig(url))
	if sess.Welcomed() {
		t.Fatal("Welcomed before the server answered")
	}
	st, err := sess.OpenStreamEarly(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Write([]byte("ssh version line")); err != nil {
		t.Fatal(err)
	}
	if !testutil.Poll(waitTimeout, func() bool { return sess.Grace() == grace && sess.Welcomed() }) {
		t.Fatalf("the WELCOME never reached the session: grace %v, welcomed %v", sess.Grace(), sess.Welcomed())
	}
}

// transportEnd dials url and returns the error its transport ends with.
func transportEnd(t *testing.T, url string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	rc := dial(t, testConfig(url)).Mux().Resumable()
	select {
	case <-rc.Done():
	case <-ctx.Done():
		t.Fatal("the session never ended")
	}
	return rc.Err()
}

// TestLostBeforeWelcome: a new session whose WebSocket dies before the
// WELCOME has no id to resume with; it ends with a reason, and is not
// redialed as a fresh session behind its streams' backs.
func TestLostBeforeWelcome(t *testing.T) {
	url, upgrades := fakeResumableServer(t, func(context.Context, *websocket.Conn) {})
	if err := transportEnd(t, url); !errors.Is(err, client.ErrNoWelcome) {
		t.Fatalf("transport error %v, want ErrNoWelcome", err)
	}
	if n := upgrades.Load(); n != 1 {
		t.Fatalf("%d upgrades, want 1: the session was redialed without an id", n)
	}
}

// TestDataBeforeWelcome: a server whose first message is not the WELCOME
// breaks the protocol; the session ends with ErrResumeProtocol.
func TestDataBeforeWelcome(t *testing.T) {
	url, _ := fakeResumableServer(t, func(ctx context.Context, ws *websocket.Conn) {
		_ = ws.Write(ctx, websocket.MessageBinary, []byte{0x00, 'x'})
		for readData(ctx, ws, 0) { // until the client closes
		}
	})
	if err := transportEnd(t, url); !errors.Is(err, mux.ErrResumeProtocol) {
		t.Fatalf("transport error %v, want ErrResumeProtocol", err)
	}
}

// TestMisSizedWelcome: a WELCOME shorter or longer than the protocol's
// is a protocol error, never a header read from inside its payload.
func TestMisSizedWelcome(t *testing.T) {
	good, _ := mux.Welcome{Status: mux.WelcomeNew, ID: [mux.SessionIDSize]byte{1}}.MarshalBinary()
	for name, msg := range map[string][]byte{"long": append(good, 0), "short": good[:10], "type only": good[:1]} {
		t.Run(name, func(t *testing.T) {
			url, _ := fakeResumableServer(t, func(ctx context.Context, ws *websocket.Conn) {
				_ = ws.Write(ctx, websocket.MessageBinary, msg)
				for readData(ctx, ws, 0) { // until the client closes
				}
			})
			if err := transportEnd(t, url); !errors.Is(err, mux.ErrResumeProtocol) {
				t.Fatalf("transport error %v, want ErrResumeProtocol", err)
			}
		})
	}
}

// A resume answered with a WELCOME for a new session, or for another
// session, is a protocol error: taken as "resumed", the client would
// replay its bytes into a session that never had them.
func TestResumeWelcomeMustNameTheSession(t *testing.T) {
	id := [mux.SessionIDSize]byte{1}
	for name, answer := range map[string]mux.Welcome{
		"status 0":   {Status: mux.WelcomeNew, ID: id, Secret: [mux.SecretSize]byte{3}, Grace: time.Minute},
		"another id": {Status: mux.WelcomeResumed, ID: [mux.SessionIDSize]byte{9}, Grace: time.Minute},
	} {
		t.Run(name, func(t *testing.T) {
			var upgrades atomic.Int64
			url, _ := fakeResumableServer(t, func(ctx context.Context, ws *websocket.Conn) {
				if upgrades.Add(1) == 1 {
					_ = mux.WriteWelcome(ctx, ws, mux.Welcome{Status: mux.WelcomeNew, ID: id, Secret: [mux.SecretSize]byte{2}, Grace: time.Minute})
					_ = ws.Close(websocket.StatusGoingAway, "") // the path drops, after the welcome
					return
				}
				_ = mux.WriteWelcome(ctx, ws, answer)
				for readData(ctx, ws, 0) { // until the client closes
				}
			})
			if err := transportEnd(t, url); !errors.Is(err, mux.ErrResumeProtocol) {
				t.Fatalf("transport error %v, want ErrResumeProtocol", err)
			}
		})
	}
}

// A raw connection the server closed with a reason (its shutdown) is worded
// for the proxy's one line; a clean end is not an error.
func TestStreamEndErrorCloseFrame(t *testing.T) {
	err := fmt.Errorf("failed to get reader: %w", websocket.CloseError{Code: websocket.StatusServiceRestart, Reason: "server is shutting down"})
	if !client.ClosedByServer(err) {
		t.Fatalf("ClosedByServer(%v) = false", err)
	}
	if got, want := client.StreamEndError(err, "box", "").Error(), "the server closed the connection to box: server is shutting down"; got != want {
		t.Fatalf("StreamEndError = %q, want %q", got, want)
	}
	if client.ClosedByServer(io.EOF) || client.StreamEndError(nil, "box", "") != nil {
		t.Fatal("a clean end read as the server's close")
	}
}

// A stream's end the session's chain of errors says badly is said in
// words of its own, and still matches what it wraps: the server's END
// (its shutdown), rather than "connection lost: read stream: session
// ended: the peer closed the session"; a new session lost before the
// server's WELCOME (spec §9.2), rather than "connection to sandbox lost:
// read stream reply: session ended: the connection was lost before the
// server accepted the session; run the command again", as the chaos run
// found a --no-agent ssh printing.
func TestStreamEndErrorWorded(t *testing.T) {
	for _, c := range []struct {
		cause error
		op    string
		want  string
	}{
		{mux.ErrPeerClosed, "read stream", "the server closed the session to box (it is shutting down, or the session was idle past its --idle-timeout); run the command again in a moment"},
		{client.ErrNoWelcome, "read stream reply", "connection to box lost before the server accepted the session; run the command again"},
	} {
		got := client.StreamEndError(fmt.Errorf("%s: %w: %w", c.op, mux.ErrSessionEnded, c.cause), "box", "")
		if got.Error() != c.want {
			t.Errorf("StreamEndError = %q, want %q", got, c.want)
		}
		if !errors.Is(got, mux.ErrSessionEnded) || !errors.Is(got, c.cause) {
			t.Errorf("StreamEndError = %v no longer matches what it wraps", got)
		}
	}
}

// A session the server no longer knows (its grace ran out while an agent
// or proxy was stopped, or it restarted) says what to do, as every other
// way to lose one does: it said only what had happened.
func TestStreamEndErrorUnknownSession(t *testing.T) {
	nr := &mux.NotResumedError{Cause: mux.ErrUnknownSession}
	got := client.StreamEndError(fmt.Errorf("read stream: %w: %w", mux.ErrSessionEnded, nr), "box", "ws://x")
	want := "session to box could not be resumed: " + mux.ErrUnknownSession.Error() + "; run the command again for a fresh session"
	if got.Error() != want {
		t.Errorf("StreamEndError = %q, want %q", got, want)
	}
	if !errors.Is(got, mux.ErrUnknownSession) {
		t.Errorf("StreamEndError = %v no longer matches mux.ErrUnknownSession", got)
	}
}

// A connection `sandmux forward` carried is told to connect again, not to
// run the command again: the forward goes on (h2's walk-through found it
// telling a running forward to run itself again).
func TestForwardEndErrorSaysConnectAgain(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("read stream: %w: %w", mux.ErrSessionEnded, mux.ErrPeerClosed),
			"the server closed the session to box (it is shutting down, or the session was idle past its --idle-timeout); connect again in a moment"},
		{fmt.Errorf("read stream: %w: %w", mux.ErrSessionEnded, &mux.NotResumedError{Cause: mux.ErrUnknownSession}),
			"session to box could not be resumed: " + mux.ErrUnknownSession.Error() + "; connect again for a fresh session"},
		{fmt.Errorf("read stream reply: %w: %w", mux.ErrSessionEnded, client.ErrNoWelcome),
			"connection to box lost before the server accepted the session; connect again"},
	} {
		if got := client.ForwardEndError(c.err, "box", "ws://x"); got.Error() != c.want {
			t.Errorf("ForwardEndError = %q, want %q", got, c.want)
		}
	}
}
