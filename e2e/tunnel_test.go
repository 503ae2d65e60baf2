//go:build linux

package e2e

// Issue 2: the core tunnel. Unless a test says otherwise, the proxy runs
// --no-agent, so each client process has its own WebSocket.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/internal/sshtest"
	"github.com/sandmux/sandmux/internal/testutil"
)

// TestSSHEcho: `ssh sandbox echo hello` through the built server.
func TestSSHEcho(t *testing.T) {
	t.Parallel()
	sshd := startSSHD(t)
	srv := startServer(t, serverOpts{Target: sshd.Addr})
	ctx := testContext(t, 2*time.Minute)

	sshEcho(ctx, t, sshd, proxyCommand(srv.URL, ""), nil, "hello")
	if n := srv.Count(logSessionStarted, logModeSandmux); n != 1 {
		t.Errorf("server logged %d sandmux sessions, want 1\n%s", n, srv.Log())
	}
}

// TestSCP64MiB: a 64 MiB random file up and back with scp, byte-exact.
func TestSCP64MiB(t *testing.T) {
	t.Parallel()
	sshd := startSSHD(t, "scp")
	srv := startServer(t, serverOpts{Target: sshd.Addr})
	ctx := testContext(t, 3*time.Minute)
	proxy := proxyCommand(srv.URL, "")

	local := t.TempDir()
	src := filepath.Join(local, "up.bin")
	want := sshtest.RandomFile(t, src, 64<<20)
	remote := filepath.Join(sshd.Dir, "remote.bin")
	back := filepath.Join(local, "back.bin")

	for _, step := range []struct{ name, from, to string }{
		{"upload", src, "sandbox:" + remote},
		{"download", "sandbox:" + remote, back},
	} {
		cmd := sshd.Command(ctx, t, "scp", proxy, "-q", step.from, step.to)
		cmd.Env = childEnv()
		if r := run(cmd, ""); r.err != nil {
			t.Fatalf("scp %s: %s", step.name, r)
		} else {
			t.Logf("scp %s of 64 MiB took %v", step.name, r.dur.Round(time.Millisecond))
		}
	}
	if got := sshtest.FileSHA256(t, remote); got != want {
		t.Fatalf("uploaded file sha256 %s, want %s", got, want)
	}
	if got := sshtest.FileSHA256(t, back); got != want {
		t.Fatalf("downloaded file sha256 %s, want %s", got, want)
	}
}

// TestSFTPBatch: an `sftp -b` batch of put, get, ls and rm.
func TestSFTPBatch(t *testing.T) {
	t.Parallel()
	sshd := startSSHD(t, "sftp")
	srv := startServer(t, serverOpts{Target: sshd.Addr})
	ctx := testContext(t, 2*time.Minute)

	local := t.TempDir()
	src := filepath.Join(local, "batch-up.bin")
	want := sshtest.RandomFile(t, src, 1<<20+123)
	remoteDir := filepath.Join(sshd.Dir, "sftp-remote")
	if err := os.Mkdir(remoteDir, 0o755); err != nil {
		t.Fatal(err)
	}
	remote := filepath.Join(remoteDir, "batch-file.bin")
	back := filepath.Join(local, "batch-back.bin")
	batch := filepath.Join(local, "batch.txt")
	script := fmt.Sprintf("put %s %s\nget %s %s\nls -l %s\nrm %s\nls %s\n", src, remote, remote, back, remoteDir, remote, remoteDir)
	if err := os.WriteFile(batch, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := sshd.Command(ctx, t, "sftp", proxyCommand(srv.URL, ""), "-b", batch, "sandbox")
	cmd.Env = childEnv()
	r := run(cmd, "")
	if r.err != nil {
		t.Fatalf("sftp -b: %s", r)
	}
	if got := sshtest.FileSHA256(t, back); got != want {
		t.Errorf("sftp get: sha256 %s, want %s", got, want)
	}
	// The first ls shows the file with its size; rm removes it.
	if !strings.Contains(r.stdout, "batch-file.bin") || !strings.Contains(r.stdout, fmt.Sprint(1<<20+123)) {
		t.Errorf("sftp ls -l output lacks the uploaded file and its size:\n%s", r.stdout)
	}
	if _, err := os.Stat(remote); !os.IsNotExist(err) {
		t.Errorf("sftp rm: %s still exists (stat: %v)", remote, err)
	}
}

// TestSFTPParallel: 8 sftp sessions at once, each moving its own 8 MiB
// file up and back.
func TestSFTPParallel(t *testing.T) {
	t.Parallel()
	sshd := startSSHD(t, "sftp")
	srv := startServer(t, serverOpts{Target: sshd.Addr})
	ctx := testContext(t, 3*time.Minute)
	proxy := proxyCommand(srv.URL, "")

	const n = 8
	jobs := newSFTPJobs(t, n, 8<<20, t.TempDir(), sshd.Dir)
	// Commands are built on the test goroutine (Command calls t.Helper
	// and may fail the test); only running them is concurrent.
	cmds := make([]*exec.Cmd, n)
	for i, j := range jobs {
		cmds[i] = sshd.Command(ctx, t, "sftp", proxy, "-b", j.batch, "sandbox")
		cmds[i].Env = childEnv()
	}
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() { j.res = run(cmds[i], "") })
	}
	wg.Wait()
	checkSFTPJobs(t, jobs)
	if got := srv.Count(logSessionStarted, logModeSandmux); got != n {
		t.Errorf("server logged %d sandmux sessions for %d --no-agent sftp processes, want %d", got, n, n)
	}
}

// TestRawClientThroughServer: a plain WebSocket client that offers no
// subprotocol (websocat) is spliced to the default target.
func TestRawClientThroughServer(t *testing.T) {
	t.Parallel()
	sshd := startSSHD(t)
	srv := startServer(t, serverOpts{Target: sshd.Addr})
	ctx := testContext(t, time.Minute)

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, srv.URL, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatalf("raw websocket dial: %v", err)
	}
	if p := ws.Subprotocol(); p != "" {
		t.Errorf("server picked subprotocol %q for a client that offered none", p)
	}
	// The connection's life is not the dial timeout's.
	lctx, lcancel := context.WithCancel(context.Background())
	defer lcancel()
	nc := websocket.NetConn(lctx, ws, websocket.MessageBinary)
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SSH-2.0-") {
		t.Fatalf("reading sshd's banner over a raw WebSocket: line %q, err %v", line, err)
	}
	_ = nc.Close()
	waitFor(t, 10*time.Second, "the server to log a raw session", func() (bool, string) {
		return srv.Count(logSessionStarted, logModeRaw) == 1, srv.Log()
	})
	if n := srv.Count(logSessionStarted, logModeSandmux); n != 0 {
		t.Errorf("server logged %d sandmux sessions for a raw client", n)
	}
}

// TestProxyThroughRawBridgeNoAgent: `sandmux proxy --no-agent` against a
// plain WebSocket-to-TCP bridge (websocat) falls back to raw mode and ssh
// works.
func TestProxyThroughRawBridgeNoAgent(t *testing.T) {
	t.Parallel()
	sshd := startSSHD(t)
	bridge := startRawBridge(t, sshd.Addr)
	ctx := testContext(t, 2*time.Minute)

	sshEcho(ctx, t, sshd, proxyCommand(bridge.URL, ""), nil, "raw")
	if n := bridge.Accepted.Load(); n != 1 {
		t.Errorf("bridge accepted %d WebSockets, want 1", n)
	}
}

// TestProxyThroughRawBridgeAgent: the same bridge in agent mode: the
// agent notices the raw server and gives each stream its own WebSocket.
func TestProxyThroughRawBridgeAgent(t *testing.T) {
	t.Parallel()
	sshd := startSSHD(t)
	bridge := startRawBridge(t, sshd.Addr)
	dir := newAgentDir(t)
	ctx := testContext(t, 2*time.Minute)
	proxy := proxyCommand(bridge.URL, dir)

	sshEcho(ctx, t, sshd, proxy, nil, "raw")
	sshEcho(ctx, t, sshd, proxy, nil, "raw2")
	s := onlySession(t, status(t, dir))
	if s.State != "raw" {
		t.Errorf("agent session state %q, want raw: %+v", s.State, s)
	}
	if n := bridge.Accepted.Load(); n < 2 {
		t.Errorf("bridge accepted %d WebSockets for 2 raw-mode streams, want >= 2", n)
	}
}

// TestProxyErrorLines pins the one line a user sees on stderr for each
// failure, the non-zero exit, and that stdout (the stream) stays empty.
func TestProxyErrorLines(t *testing.T) {
	t.Parallel()
	echo := testutil.EchoServer(t).Addr
	tokenSrv := startServer(t, serverOpts{Target: echo, Token: "right-token"})
	closedPort := testutil.FreePort(t)
	closedTarget := fmt.Sprintf("127.0.0.1:%d", closedPort)
	// The closed port is the default target; 10.0.0.1:5432 is never allowed.
	closedSrv := startServer(t, serverOpts{Target: closedTarget})
	deadURL := fmt.Sprintf("ws://127.0.0.1:%d", testutil.FreePort(t))

	cases := []struct {
		name   string
		args   []string
		host   string // "" means sandbox
		want   string // the exact stderr line, without "\n"
		substr string // or a part of it, when the rest varies
	}{
		{
			name: "wrong token",
			args: []string{"--url", tokenSrv.URL, "--token", "wrong-token"},
			want: fmt.Sprintf("sandmux: %s: 401 Unauthorized (check --token, --token-file or SANDMUX_TOKEN)", tokenSrv.URL),
		},
		{
			name: "target not allowed",
			args: []string{"--url", closedSrv.URL, "--target", "10.0.0.1:5432"},
			want: "sandmux: server refused target 10.0.0.1:5432: not allowed (add --allow 10.0.0.1:5432 to `sandmux server` in the sandbox)",
		},
		{
			name: "target refused",
			args: []string{"--url", closedSrv.URL},
			want: fmt.Sprintf("sandmux: %s refused the connection inside the sandbox (is the service listening?)", closedTarget),
		},
		{
			name:   "nothing listening",
			args:   []string{"--url", deadURL},
			substr: "connection refused (is `sandmux server` listening there?)",
		},
		{
			// ssh passes any host name as %h: "help" and "h" are hosts,
			// not a request for help text on stdout (the stream).
			name:   "host named help",
			args:   []string{"--url", deadURL},
			host:   "help",
			substr: "connection refused (is `sandmux server` listening there?)",
		},
		{
			name:   "host named h",
			args:   []string{"--url", deadURL},
			host:   "h",
			substr: "connection refused (is `sandmux server` listening there?)",
		},
		{
			name: "bad url scheme",
			args: []string{"--url", "http://x"},
			want: `sandmux: bad url: "http://x": scheme must be ws:// or wss:// (for example wss://8081-{host}.e2b.app)`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			host := tc.host
			if host == "" {
				host = "sandbox"
			}
			args := append(append([]string{"proxy", "--no-agent"}, tc.args...), host)
			r := run(sandmux(ctx, nil, args...), "")
			if r.exitCode() <= 0 {
				t.Errorf("proxy exited %d, want non-zero\n%s", r.exitCode(), r)
			}
			if r.stdout != "" {
				t.Errorf("proxy wrote %q to stdout, which carries stream bytes only", r.stdout)
			}
			switch {
			case tc.want != "" && r.stderr != tc.want+"\n":
				t.Errorf("stderr:\n got %q\nwant %q", r.stderr, tc.want+"\n")
			case tc.substr != "":
				if !strings.HasPrefix(r.stderr, "sandmux: ") || !strings.HasSuffix(r.stderr, tc.substr+"\n") || strings.Count(r.stderr, "\n") != 1 {
					t.Errorf("stderr %q: want one line starting \"sandmux: \" and ending %q", r.stderr, tc.substr)
				}
			}
		})
	}
	// The allowlist is checked before any dial: 10.0.0.1 was never tried.
	if n := closedSrv.Count("refused target: not allowed", "target=10.0.0.1:5432"); n != 1 {
		t.Errorf("server logged %d allowlist refusals for 10.0.0.1:5432, want 1\n%s", n, closedSrv.Log())
	}
	if closedSrv.Count("cannot connect target", "10.0.0.1") != 0 {
		t.Errorf("server tried to dial a target that is not allowed:\n%s", closedSrv.Log())
	}
}

// TestServerSIGTERMWithLiveSession: SIGTERM ends a server that carries a
// live stream, with exit status 0, once its --shutdown-timeout has passed.
func TestServerSIGTERMWithLiveSession(t *testing.T) {
	sshd := startSSHD(t)
	// The live stream never ends by itself, so the server drains it for
	// its whole --shutdown-timeout and then closes it.
	srv := startServer(t, serverOpts{Target: sshd.Addr, Args: []string{"--shutdown-timeout", "1s"}})
	ctx := testContext(t, time.Minute)

	// A proxy whose stdin stays open holds a live stream to sshd; the
	// banner on its stdout proves the stream is up end to end.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	outPath := filepath.Join(t.TempDir(), "proxy.out")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := sandmux(ctx, nil, "proxy", "--no-agent", "--url", srv.URL, "sandbox")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pr, out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = pr.Close()
	proxyDone := make(chan error, 1)
	go func() { proxyDone <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-proxyDone
	}()
	waitFile(t, outPath, "SSH-2.0-", 15*time.Second)
	if n := srv.Count(logSessionStarted, logModeSandmux); n != 1 {
		t.Fatalf("server logged %d sandmux sessions, want 1", n)
	}

	code, took := srv.Terminate()
	if code != 0 {
		t.Errorf("server exited %d on SIGTERM with a live session, want 0\n%s", code, srv.Log())
	}
	if took > time.Second+5*time.Second {
		t.Errorf("server took %v to exit on SIGTERM, want its 1s --shutdown-timeout and at most the 5s after it to close", took)
	}
	t.Logf("server exited %d %v after SIGTERM", code, took.Round(time.Millisecond))

	// The proxy learns its stream is gone.
	select {
	case err := <-proxyDone:
		proxyDone <- err // for the deferred kill
		b, _ := os.ReadFile(outPath)
		t.Logf("proxy ended: %v; output %q", err, b)
	case <-time.After(15 * time.Second):
		t.Errorf("proxy still running 15s after its server exited")
	}
}

// TestRawBridgeAgentCleanEnd: through the agent to a raw bridge, a proxy
// whose input ends exits 0 with nothing on stderr, with its stdout a
// pipe (handed to the agent) or a file (framed through the proxy). A raw
// WebSocket cannot half-close, so the end of the input closes it whole;
// the agent took that close for a failure, or the agent's going away.
func TestRawBridgeAgentCleanEnd(t *testing.T) {
	t.Parallel()
	bridge := startRawBridge(t, testutil.EchoServer(t).Addr)
	dir := newAgentDir(t)
	ctx := testContext(t, 2*time.Minute)
	for _, toFile := range []bool{false, true} {
		cmd := sandmux(ctx, nil, "proxy", "--agent-dir", dir, "--url", bridge.URL, "box")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out *bufio.Reader
		var stderr strings.Builder
		cmd.Stderr = &stderr
		var file *os.File
		if toFile {
			file, err = os.Create(filepath.Join(t.TempDir(), "out"))
			if err != nil {
				t.Fatal(err)
			}
			defer file.Close()
			cmd.Stdout = file
		} else {
			pipe, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			out = bufio.NewReader(pipe)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := stdin.Write([]byte("hello\n")); err != nil {
			t.Fatal(err)
		}
		if out != nil {
			// The echo has come back before the input ends.
			if line, err := out.ReadString('\n'); line != "hello\n" || err != nil {
				t.Fatalf("stdout %q, %v", line, err)
			}
		} else {
			waitFor(t, 30*time.Second, "the echo in the file", func() (bool, string) {
				b, _ := os.ReadFile(file.Name())
				return string(b) == "hello\n", fmt.Sprintf("%q", b)
			})
		}
		_ = stdin.Close()
		if err := cmd.Wait(); err != nil || stderr.Len() > 0 {
			t.Errorf("stdout to a file %v: proxy: %v, stderr %q; want exit 0 and no words", toFile, err, stderr.String())
		}
	}
}

// Behind an HTTP proxy (HTTP_PROXY for ws://, HTTPS_PROXY for wss://, as
// curl and git read them), `sandmux proxy` reaches the server through a
// CONNECT tunnel, with --no-agent and through the agent; a server on
// loopback is never proxied (Go's rule, as NO_PROXY would).
func TestProxyBehindHTTPProxy(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, time.Minute)
	echo := testutil.EchoServer(t).Addr
	srv := startServer(t, serverOpts{Target: echo})
	hp := testutil.StartConnectProxy(t, "alice:s3cret")
	url := fmt.Sprintf("ws://box.sandmux.invalid:%d", srv.Port) // resolved by the proxy alone
	env := []string{"HTTP_PROXY=" + hp.URL("alice:s3cret")}
	agentDir := newAgentDir(t)
	for _, mode := range [][]string{{"--no-agent"}, {"--agent-dir", agentDir}} {
		args := append(append([]string{"proxy", "--url", url}, mode...), "sandbox")
		if r := run(sandmux(ctx, env, args...), "through the proxy"); r.err != nil || r.stdout != "through the proxy" {
			t.Fatalf("sandmux %v behind an HTTP proxy:\n%s", args, r)
		}
	}
	// The proxy's URL, password and all, reached the agent with the
	// request only, not in its environment.
	var st struct {
		PID      int
		Sessions []struct{ Proxy string }
	}
	if r := run(sandmux(ctx, nil, "status", "--json", "--agent-dir", agentDir), ""); r.err != nil || json.Unmarshal([]byte(r.stdout), &st) != nil ||
		len(st.Sessions) != 1 || st.Sessions[0].Proxy != "http://xxxxx@"+strings.TrimPrefix(hp.URL(""), "http://") {
		t.Fatalf("status (want the session's proxy, masked):\n%s", r)
	}
	if environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", st.PID)); err != nil || bytes.Contains(environ, []byte("s3cret")) {
		t.Fatalf("the agent's environment holds the proxy's password (or could not be read: %v)", err)
	}
	if a := hp.Asked(); len(a) != 2 || a[0] != a[1] || a[0] != strings.TrimPrefix(url, "ws://") {
		t.Fatalf("the HTTP proxy was asked for %q, want two tunnels to %s", a, strings.TrimPrefix(url, "ws://"))
	}
	// doctor's steps go through the proxy too (its target, the echo
	// service, is not sshd: a warning, healthy for forward).
	r := run(sandmux(ctx, env, "doctor", "--url", url, "--target", echo, "--timeout", "2s", "--probe", "0", "box"), "")
	hpAddr := strings.TrimPrefix(hp.URL(""), "http://")
	if !strings.Contains(r.stdout, "SKIP  dns       box.sandmux.invalid is resolved by the HTTP proxy http://xxxxx@"+hpAddr) ||
		!strings.Contains(r.stdout, "PASS  tcp       connected to "+strings.TrimPrefix(url, "ws://")+" through HTTP proxy http://xxxxx@"+hpAddr) ||
		!strings.Contains(r.stdout, "verdict: healthy") {
		t.Fatalf("doctor behind an HTTP proxy:\n%s", r)
	}
	r = run(sandmux(ctx, env, "proxy", "--no-agent", "--url", srv.URL, "sandbox"), "direct")
	if r.err != nil || r.stdout != "direct" || len(hp.Asked()) != 4 {
		t.Fatalf("a loopback server was proxied, or failed:\n%s", r)
	}
	env = []string{"HTTP_PROXY=" + hp.URL("alice:wrong")}
	r = run(sandmux(ctx, env, "proxy", "--no-agent", "--url", url, "sandbox"), "")
	if want := "sandmux: " + url + ": HTTP proxy http://xxxxx@" + strings.TrimPrefix(hp.URL(""), "http://") + " refused the tunnel: 407 Proxy Authentication Required"; r.err == nil || !strings.HasPrefix(r.stderr, want) {
		t.Fatalf("a refused tunnel: stderr %q, want it to start %q", r.stderr, want)
	}
}

// httpsProxyRig starts a sandmux server before an echo service and an
// https:// CONNECT proxy (wanting auth, if given), and returns the proxy,
// a file holding its CA's PEM (for SSL_CERT_FILE), and the server's URL
// by a name only the proxy resolves.
func httpsProxyRig(t *testing.T, auth string) (hp *testutil.ConnectProxy, caFile, url string) {
	t.Helper()
	srv := startServer(t, serverOpts{Target: testutil.EchoServer(t).Addr})
	hp = testutil.StartTLSConnectProxy(t, auth)
	caFile = filepath.Join(t.TempDir(), "proxy-ca.pem")
	if err := os.WriteFile(caFile, hp.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return hp, caFile, fmt.Sprintf("ws://box.sandmux.invalid:%d", srv.Port)
}

// Behind an https:// proxy (HTTPS_PROXY=https://...), spoken to over
// TLS as curl does, `sandmux proxy` reaches the server with --no-agent
// and through the agent, trusting the proxy's certificate as the system
// does (SSL_CERT_FILE here); an untrusted proxy, or a plain one named
// https://, is one line that says what to do.
func TestProxyBehindHTTPSProxy(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, time.Minute)
	hp, caFile, url := httpsProxyRig(t, "alice:s3cret")
	env := []string{"HTTP_PROXY=" + hp.URL("alice:s3cret"), "SSL_CERT_FILE=" + caFile}
	for _, mode := range [][]string{{"--no-agent"}, {"--agent-dir", newAgentDir(t)}} {
		args := append(append([]string{"proxy", "--url", url}, mode...), "sandbox")
		if r := run(sandmux(ctx, env, args...), "through the proxy"); r.err != nil || r.stdout != "through the proxy" {
			t.Fatalf("sandmux %v behind an https:// proxy:\n%s", args, r)
		}
	}
	if a := hp.Asked(); len(a) != 2 || a[0] != a[1] || a[0] != strings.TrimPrefix(url, "ws://") {
		t.Fatalf("the proxy was asked for %q, want two tunnels to %s", a, strings.TrimPrefix(url, "ws://"))
	}
	hpAddr := strings.TrimPrefix(hp.URL(""), "https://")
	r := run(sandmux(ctx, env, "doctor", "--url", url, "--timeout", "2s", "--probe", "0", "box"), "")
	if !strings.Contains(r.stdout, "PASS  tcp       connected to "+strings.TrimPrefix(url, "ws://")+" through HTTP proxy https://xxxxx@"+hpAddr) {
		t.Fatalf("doctor behind an https:// proxy:\n%s", r)
	}

	r = run(sandmux(ctx, env[:1], "proxy", "--no-agent", "--url", url, "sandbox"), "")
	if want := "sandmux: " + url + ": HTTP proxy https://xxxxx@" + hpAddr + ": TLS certificate not trusted (the proxy's certificate is not trusted here: "; r.err == nil || !strings.HasPrefix(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("an untrusted proxy: stderr %q, want one line starting %q", r.stderr, want)
	}
	plain := testutil.StartConnectProxy(t, "")
	env = []string{"HTTP_PROXY=https://" + strings.TrimPrefix(plain.URL(""), "http://")}
	r = run(sandmux(ctx, env, "proxy", "--no-agent", "--url", url, "sandbox"), "")
	if want := "(the proxy does not speak TLS: write its URL with http://, as " + plain.URL("") + ")\n"; r.err == nil || !strings.HasSuffix(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("a plain proxy named https://: stderr %q, want one line ending %q", r.stderr, want)
	}
}

// A running agent reads its system roots once, in the environment it
// started in: a proxy that was told its https:// proxy's certificate is
// not trusted, and set SSL_CERT_FILE as the line says, met the same
// refusal from the same agent until it was stopped. The proxy now sends
// the certificates of SSL_CERT_FILE and SSL_CERT_DIR with its request, as
// it sends --ca's, and the refusal says that a CA added to the system's
// store instead needs the agent restarted.
func TestAgentTrustsTheProxysSSLCertFile(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, time.Minute)
	hp, caFile, url := httpsProxyRig(t, "")
	dir := newAgentDir(t)
	env := []string{"HTTP_PROXY=" + hp.URL("")}
	r := run(sandmux(ctx, env, "proxy", "--agent-dir", dir, "--url", url, "sandbox"), "")
	if r.err == nil || !strings.Contains(r.stderr, "TLS certificate not trusted") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("an untrusted proxy through the agent: %s", r)
	}
	// The agent's directory is not the default one: the command says so.
	if want := "; the agent read the system's trust store when it started: after adding a CA there, run `sandmux agent --stop --agent-dir " + dir + "`\n"; !strings.HasSuffix(r.stderr, want) {
		t.Fatalf("an untrusted proxy through the agent: stderr %q, want it to end %q", r.stderr, want)
	}
	for _, v := range []string{"SSL_CERT_DIR=" + filepath.Dir(caFile), "SSL_CERT_FILE=" + caFile} {
		env := append(env, v)
		if r := run(sandmux(ctx, env, "proxy", "--agent-dir", dir, "--url", url, "sandbox"), "trusted now"); r.err != nil || r.stdout != "trusted now" {
			t.Fatalf("the same agent, asked with %s naming the proxy's CA:\n%s", v, r)
		}
	}
}

// A --no-agent proxy tells a refusal on stderr before ssh's stdout closes:
// ssh exits as soon as it does, prints its own line and hangs up, and the
// proxy's reason came after the session's close handshake, behind ssh's
// `kex_exchange_identification: Connection closed`, or not at all when
// the proxy was killed meanwhile. Killed the moment its stdout ends, the
// proxy has already said why.
func TestProxyRefusalToldBeforeStdoutEnds(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{Target: testutil.EchoServer(t).Addr})
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := sandmux(ctx, nil, "proxy", "--no-agent", "--url", srv.URL, "--target", "10.0.0.1:5432", "sandbox")
		stdinR, stdinW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, stdoutW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		stderr, err := os.CreateTemp(t.TempDir(), "stderr")
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, stdoutW, stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		_, _ = stdinR.Close(), stdoutW.Close()
		if _, err := io.Copy(io.Discard, stdout); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Process.Kill() // as ssh's exit would end it, at once
		_ = cmd.Wait()
		_, _ = stdinW.Close(), stdout.Close()
		cancel()
		got, err := os.ReadFile(stderr.Name())
		if err != nil {
			t.Fatal(err)
		}
		if want := "sandmux: server refused target 10.0.0.1:5432: not allowed (add --allow 10.0.0.1:5432 to `sandmux server` in the sandbox)\n"; string(got) != want {
			t.Fatalf("round %d: stderr when stdout ended: %q, want %q", i, got, want)
		}
	}
}
