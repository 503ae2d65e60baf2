package server_test

import (
	"bufio"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/server"
)

// A connection whose request the handler has answered keeps its place
// until the answer has gone out. net/http writes a small answer (a
// health check's "ok", a 401, the session limit's 503) only after the
// handler returns; a connection marked as waiting from the handler's
// return was closed by a newcomer at the limit in that gap, and its
// client got no answer at all for a request the server had served. The
// handler here holds the gap open until the newcomer is in.
func TestHandshakeLimitAnsweredRequestIsNotCutOff(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Target = testutil.EchoServer(t).Addr
	cfg.MaxHandshakes = 1
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetBusyAnswerLimit(time.Minute)
	returned, release := make(chan struct{}), make(chan struct{})
	admitted := make(chan struct{}, 8)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(w, r)
		if r.URL.Path == "/healthz" {
			close(returned)
			<-release // net/http has not yet written the answer
		}
	}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		ctx = srv.ConnContext(ctx, c)
		admitted <- struct{}{}
		return ctx
	}
	ts.Config.ConnState = srv.ConnState
	ts.Start()
	t.Cleanup(func() { _ = srv.Close(); ts.Close() })
	addr := strings.TrimPrefix(ts.URL, "http://")

	check, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	<-admitted
	_ = check.SetDeadline(time.Now().Add(hardWait))
	if _, err := io.WriteString(check, "GET /healthz HTTP/1.1\r\nHost: sandbox\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-returned:
	case <-time.After(hardWait):
		t.Fatal("the health check never reached the handler")
	}
	newcomer, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer newcomer.Close()
	select {
	case <-admitted:
	case <-time.After(hardWait):
		t.Fatal("the newcomer was never admitted")
	}
	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(check), nil)
	if err != nil {
		t.Fatalf("a health check the server answered, with a newcomer at the limit: %v, want its 200", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health check: %s", resp.Status)
	}
}
