//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
)

// Behind a SOCKS5 proxy given as curl users give it (ALL_PROXY=socks5h://
// user:password@host:port), `sandmux proxy` reaches the server through
// it, with --no-agent and through the agent, which gets the proxy's URL
// with the request only; status and doctor name it; NO_PROXY and a
// scheme-specific variable still win over ALL_PROXY.
func TestProxyBehindSOCKSProxy(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, time.Minute)
	echo := testutil.EchoServer(t).Addr
	srv := startServer(t, serverOpts{Target: echo})
	sp := testutil.StartSOCKSProxy(t, "alice:s3cret")
	host := fmt.Sprintf("box.sandmux.invalid:%d", srv.Port) // resolved by the proxy alone
	url := "ws://" + host
	env := []string{"ALL_PROXY=" + sp.URL("socks5h", "alice:s3cret")}
	agentDir := newAgentDir(t)
	for _, mode := range [][]string{{"--no-agent"}, {"--agent-dir", agentDir}} {
		args := append(append([]string{"proxy", "--url", url}, mode...), "sandbox")
		if r := run(sandmux(ctx, env, args...), "through socks"); r.err != nil || r.stdout != "through socks" {
			t.Fatalf("sandmux %v behind a SOCKS proxy:\n%s", args, r)
		}
	}
	masked := sp.URL("socks5h", "xxxxx")
	var st struct {
		PID      int
		Sessions []struct{ Proxy string }
	}
	if r := run(sandmux(ctx, nil, "status", "--json", "--agent-dir", agentDir), ""); r.err != nil || json.Unmarshal([]byte(r.stdout), &st) != nil ||
		len(st.Sessions) != 1 || st.Sessions[0].Proxy != masked {
		t.Fatalf("status (want the session's proxy, masked, %s):\n%s", masked, r)
	}
	if r := run(sandmux(ctx, nil, "status", "--agent-dir", agentDir), ""); r.err != nil || !strings.Contains(r.stdout, url+" via "+masked) {
		t.Fatalf("status (want %q):\n%s", url+" via "+masked, r)
	}
	if environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", st.PID)); err != nil || bytes.Contains(environ, []byte("s3cret")) {
		t.Fatalf("the agent's environment holds the proxy's password (or could not be read: %v)", err)
	}
	if a := sp.Asked(); len(a) != 2 || a[0] != host || a[1] != host {
		t.Fatalf("the SOCKS proxy was asked for %q, want two connections to %s", a, host)
	}

	r := run(sandmux(ctx, env, "doctor", "--url", url, "--target", echo, "--timeout", "2s", "--probe", "0", "box"), "")
	if !strings.Contains(r.stdout, "SKIP  dns       box.sandmux.invalid is resolved by the SOCKS proxy "+masked) ||
		!strings.Contains(r.stdout, "PASS  tcp       connected to "+host+" through SOCKS proxy "+masked) ||
		!strings.Contains(r.stdout, "verdict: healthy") || strings.Contains(r.stdout, "s3cret") {
		t.Fatalf("doctor behind a SOCKS proxy:\n%s", r)
	}

	// NO_PROXY exempts the host: a direct dial, which cannot resolve it.
	asked := len(sp.Asked()) // doctor's steps asked too
	r = run(sandmux(ctx, append(env, "NO_PROXY=.sandmux.invalid"), "proxy", "--no-agent", "--url", url, "sandbox"), "")
	if r.err == nil || !strings.Contains(r.stderr, "cannot resolve box.sandmux.invalid") || len(sp.Asked()) != asked {
		t.Fatalf("NO_PROXY did not exempt the host from ALL_PROXY (asked %q):\n%s", sp.Asked(), r)
	}
	// HTTP_PROXY applies to ws:// before ALL_PROXY.
	hp := testutil.StartConnectProxy(t, "")
	r = run(sandmux(ctx, append(env, "HTTP_PROXY="+hp.URL("")), "proxy", "--no-agent", "--url", url, "sandbox"), "http")
	if r.err != nil || r.stdout != "http" || len(hp.Asked()) != 1 || len(sp.Asked()) != asked {
		t.Fatalf("HTTP_PROXY and ALL_PROXY both set: want the HTTP proxy:\n%s", r)
	}
	// HTTP_PROXY may name a SOCKS proxy too, which then resolves nothing
	// itself with socks5://: the client does, and fails here.
	r = run(sandmux(ctx, []string{"HTTP_PROXY=" + sp.URL("socks5", "alice:s3cret")}, "proxy", "--no-agent", "--url", url, "sandbox"), "")
	if want := "sandmux: " + url + ": SOCKS proxy " + strings.Replace(masked, "socks5h", "socks5", 1) + ": cannot resolve box.sandmux.invalid"; r.err == nil || !strings.HasPrefix(r.stderr, want) {
		t.Fatalf("socks5:// to a name only the proxy knows: stderr %q, want it to start %q", r.stderr, want)
	}
	r = run(sandmux(ctx, []string{"ALL_PROXY=" + sp.URL("socks5h", "alice:wrong")}, "proxy", "--no-agent", "--url", url, "sandbox"), "")
	if want := "sandmux: " + url + ": SOCKS proxy " + masked + ": the proxy rejected the user name and password (check the user and password in the proxy URL"; r.err == nil || !strings.HasPrefix(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("a refused login: stderr %q, want one line starting %q", r.stderr, want)
	}
}
