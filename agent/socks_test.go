package agent

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/sandmux/sandmux/internal/testutil"
)

// An agent that predates SOCKS (or https:// proxy) support refuses such
// a proxy as "only http:// proxies are supported", which told a user of a
// current sandmux that it has none: the proxy says to restart the agent
// instead.
// A current agent's own reason (the proxy is down) stands.
func TestProxyTellsAnAgentPredatesSOCKS(t *testing.T) {
	dir := shortDir(t)
	if err := EnsureDir(dir); err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: SocketPath(dir), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			var req request
			if readMessage(c, &req) == nil {
				if req.Op == opStatus {
					_ = writeMessage(c, reply{Version: protoVersion, OK: true, Status: &Status{PID: 1}}) // no SOCKS
				} else {
					_ = writeMessage(c, reply{Version: protoVersion, Error: "invalid client config: proxy socks5h://127.0.0.1:1080 (HTTPS_PROXY or HTTP_PROXY): only http:// proxies (HTTP CONNECT) are supported"})
				}
			}
			_ = c.Close()
		}
	})
	_, err = Open(context.Background(), dir, noStart, OpenRequest{URL: "ws://box.invalid:8081", Proxy: "socks5h://127.0.0.1:1080"})
	if err == nil || !strings.Contains(err.Error(), "predates SOCKS proxy support") {
		t.Fatalf("open through an agent without SOCKS support: %v", err)
	}
	_, err = Open(context.Background(), dir, noStart, OpenRequest{URL: "ws://box.invalid:8081", Proxy: "https://127.0.0.1:3128"})
	if err == nil || !strings.Contains(err.Error(), "predates https:// proxy support") {
		t.Fatalf("open through an agent without https:// proxy support: %v", err)
	}
	// An HTTP proxy's refusal is the agent's to tell.
	_, err = Open(context.Background(), dir, noStart, OpenRequest{URL: "ws://box.invalid:8081", Proxy: "http://127.0.0.1:3128"})
	if err == nil || strings.Contains(err.Error(), "predates") {
		t.Fatalf("open with an HTTP proxy refused: %v", err)
	}

	cur := shortDir(t)
	runAgent(t, cur, nil)
	sp := testutil.StartSOCKSProxy(t, "alice:s3cret")
	_, err = Open(context.Background(), cur, noStart, OpenRequest{URL: "ws://box.invalid:8081", Proxy: sp.URL("socks5h", "")})
	if err == nil || strings.Contains(err.Error(), "predates") || !strings.Contains(err.Error(), "the proxy requires a user name and password") {
		t.Fatalf("open through a current agent and a SOCKS proxy that wants a password: %v", err)
	}
}
