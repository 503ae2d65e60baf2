package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/client"
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

// dialStream dials url and opens a stream early, as the proxy does; both
// are closed when the test ends.
func dialStream(t *testing.T, url string) (*client.Session, net.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	sess := dial(t, testConfig(url))
	st, err := sess.OpenStreamEarly(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return sess, st
}

// readData reads messages until a DATA one, which it reports.
func readData(ctx context.Context, ws *websocket.Conn) bool {
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return false
		}
		if len(b) > 0 && b[0] == 0x00 {
			return true
		}
	}
}

// TestNewSessionDoesNotWaitForWelcome: a new session's first stream
// leaves with its HELLO, a round trip before the WELCOME comes back
// (spec §9.2). This server answers only once it has the stream's data.
func TestNewSessionDoesNotWaitForWelcome(t *testing.T) {
	const grace = 42 * time.Second
	url, _ := fakeResumableServer(t, func(ctx context.Context, ws *websocket.Conn) {
		if !readData(ctx, ws) {
			t.Error("no DATA before the WELCOME: the client waited for it")
			return
		}
		_ = mux.WriteWelcome(ctx, ws, mux.Welcome{Status: mux.WelcomeNew, ID: [mux.SessionIDSize]byte{1}, Grace: grace})
		for readData(ctx, ws) { // until the client closes
		}
	})
	sess, st := dialStream(t, url)
	if _, err := st.Write([]byte("ssh version line")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(waitTimeout); sess.Grace() != grace; {
		if time.Now().After(deadline) {
			t.Fatalf("the WELCOME's grace never reached the session: %v", sess.Grace())
		}
		time.Sleep(5 * time.Millisecond)
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
	var nr *mux.NotResumedError
	if err := transportEnd(t, url); !errors.As(err, &nr) {
		t.Fatalf("transport error %v, want a NotResumedError", err)
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
		for readData(ctx, ws) { // until the client closes
		}
	})
	if err := transportEnd(t, url); !errors.Is(err, mux.ErrResumeProtocol) {
		t.Fatalf("transport error %v, want ErrResumeProtocol", err)
	}
}
