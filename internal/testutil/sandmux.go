package testutil

import (
	"net/http/httptest"
	"testing"

	"github.com/sandmux/sandmux/server"
)

// SandmuxServer starts a sandmux server in front of an echo target, with
// mod (if not nil) applied to its default config, and returns it with its
// ws:// URL. The test's cleanup drops its client connections and closes
// it.
func SandmuxServer(t testing.TB, mod func(*server.Config)) (*server.Server, string) {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Target = EchoServer(t).Addr
	if mod != nil {
		mod(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		_ = srv.Close()
		hs.Close()
	})
	return srv, "ws://" + hs.Listener.Addr().String()
}
