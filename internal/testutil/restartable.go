package testutil

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/sandmux/sandmux/server"
)

// Restartable is a sandmux server, in front of an echo target, at an
// address that outlives it: Restart puts a new one there, which knows
// none of the old one's sessions (a sandbox whose server restarted), and
// SetDown has the address answer 503 meanwhile (its edge while it is
// down). The old server's connections stay until the test cuts them.
type Restartable struct {
	// URL is the ws:// URL, Addr its host:port.
	URL, Addr string

	t    testing.TB
	cur  atomic.Pointer[server.Server]
	down atomic.Bool
}

// RestartableServer starts a Restartable; the test's cleanup closes it.
func RestartableServer(t testing.TB) *Restartable {
	t.Helper()
	r := &Restartable{t: t}
	r.Restart()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.down.Load() {
			http.Error(w, "sandbox unavailable", http.StatusServiceUnavailable)
			return
		}
		r.cur.Load().ServeHTTP(w, req)
	}))
	// Before the servers' own cleanups (LIFO), as in SandmuxServer.
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
	})
	r.Addr = hs.Listener.Addr().String()
	r.URL = "ws://" + r.Addr
	return r
}

// Restart puts a new server at the address.
func (r *Restartable) Restart() {
	r.t.Helper()
	cfg := server.DefaultConfig()
	cfg.Target = EchoServer(r.t).Addr
	srv, err := server.New(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = srv.Close() })
	r.cur.Store(srv)
}

// SetDown has the address answer 503 (down) or the server (!down).
func (r *Restartable) SetDown(down bool) { r.down.Store(down) }
