package server_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
	"github.com/sandmux/sandmux/server"
)

// fuzzHandlerBound is how long a session's handler may take to return
// once its client has gone: the header timeout and the resume grace below
// are a fraction of it.
const fuzzHandlerBound = 10 * time.Second

// fuzzRig is one server for a whole fuzz process (inputs run one at a
// time in each process), with a hook that reports each handler's return.
type fuzzRig struct {
	srv      *server.Server
	url      string
	returned chan struct{}
}

func newFuzzRig(f *testing.F, grace time.Duration) *fuzzRig {
	f.Helper()
	cfg := server.DefaultConfig()
	cfg.Target = testutil.EchoServer(f).Addr // the default target
	cfg.Allow = []string{"nosuch.invalid:22"}
	cfg.DialTimeout = 5 * time.Second
	cfg.Mux = fastMux()
	cfg.Mux.HeaderTimeout = 200 * time.Millisecond
	cfg.ResumeGrace = grace
	srv, err := server.New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	r := &fuzzRig{srv: srv, returned: make(chan struct{}, 64)}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		defer func() { r.returned <- struct{}{} }()
		srv.ServeHTTP(w, req)
	}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.Start()
	r.url = "ws" + strings.TrimPrefix(ts.URL, "http")
	f.Cleanup(func() {
		_ = srv.Close()
		ts.Close()
	})
	return r
}

// session upgrades with proto, optionally says a new-session hello, writes
// data as binary messages and leaves (gracefully when parts has its top
// bit set, else by dropping the connection). It then requires the
// session's handler to return within fuzzHandlerBound and the server to
// hold no session or stream.
func (r *fuzzRig) session(t *testing.T, proto string, hello bool, data []byte, parts uint8) {
	ctx, cancel := context.WithTimeout(context.Background(), fuzzHandlerBound)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, r.url, &websocket.DialOptions{Subprotocols: []string{proto}, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	// An input that fails before its handler's return is awaited below
	// (its hello, on a loaded machine, past the 200 ms header timeout)
	// still waits for it here: left, that return was taken by the next
	// input for its own, which then found its session still active, and
	// the fuzzer's minimizing reported that instead of the failure.
	awaited := false
	defer func() {
		if !awaited {
			select {
			case <-r.returned:
			case <-time.After(fuzzHandlerBound):
			}
		}
	}()
	defer ws.CloseNow()
	if hello {
		if w, err := mux.ClientHandshake(ctx, ws, mux.Hello{}); err != nil || w.Status != mux.WelcomeNew {
			t.Fatalf("hello: %v %v", w.Status, err)
		}
	}
	// Whatever the server sends (pings, replies, acks) is read and
	// dropped, so its writes never wait on this client.
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			if _, _, err := ws.Read(ctx); err != nil {
				return
			}
		}
	}()
	for _, m := range testutil.Split(data, parts) {
		if err := ws.Write(ctx, websocket.MessageBinary, m); err != nil {
			break // the server may close first
		}
	}
	if parts&0x80 != 0 {
		_ = ws.Close(websocket.StatusNormalClosure, "")
	} else {
		_ = ws.CloseNow()
	}
	<-readDone
	select {
	case <-r.returned:
		awaited = true
	case <-time.After(fuzzHandlerBound):
		t.Fatalf("the session's handler did not return within %v of its client leaving", fuzzHandlerBound)
	}
	if st := r.srv.Stats(); st.ActiveSessions != 0 || st.ActiveStreams != 0 {
		t.Fatalf("after the session ended: %d sessions and %d streams still active", st.ActiveSessions, st.ActiveStreams)
	}
}

// FuzzServerSession feeds a sandmux.v1 session arbitrary bytes after the
// upgrade, as one to four binary messages: no input may panic the
// server, keep a handler past its client, or leave a session or stream
// (or, for the seeds, a goroutine: see TestMain) behind.
// Seeds live in testdata/fuzz/FuzzServerSession.
func FuzzServerSession(f *testing.F) {
	r := newFuzzRig(f, 0)
	f.Fuzz(func(t *testing.T, data []byte, parts uint8) {
		r.session(t, mux.Subprotocol, false, data, parts)
	})
}

// FuzzServerSessionV2 is FuzzServerSession for sandmux.v2: a valid hello
// first (unless parts has bit 0x40 set, which fuzzes the hello itself),
// then the input as resumable-transport messages, each starting with its
// type byte. The resume grace is short, so a session left detached by a
// dropped connection ends within the bound.
// Seeds live in testdata/fuzz/FuzzServerSessionV2.
func FuzzServerSessionV2(f *testing.F) {
	r := newFuzzRig(f, 50*time.Millisecond)
	f.Fuzz(func(t *testing.T, data []byte, parts uint8) {
		r.session(t, mux.SubprotocolResumable, parts&0x40 == 0, data, parts)
	})
}
