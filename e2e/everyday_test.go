//go:build linux

package e2e

// Everyday use: forward -L, ssh-config, doctor, the reconnect line,
// completion and metrics, each through the real binary.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/sshtest"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/server"
)

// edProcess is a long-running sandmux command whose stderr lines the test
// reads as they come.
type edProcess struct {
	cmd    *exec.Cmd
	lines  chan string
	mu     sync.Mutex
	stderr strings.Builder
	done   chan struct{}
}

func edStart(t *testing.T, ctx context.Context, env []string, args ...string) *edProcess {
	t.Helper()
	cmd := sandmux(ctx, env, args...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	p := &edProcess{cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		_ = pr.Close()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		<-p.done
	})
	return p
}

func (p *edProcess) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitLine returns the first stderr line matching re.
func (p *edProcess) waitLine(t *testing.T, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l := <-p.lines:
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-deadline:
			t.Fatalf("no stderr line matching %s within %s; stderr:\n%s", re, timeout, p.Stderr())
		}
	}
}

// stop sends SIGTERM and returns the exit code.
func (p *edProcess) stop(t *testing.T) int {
	t.Helper()
	return p.signal(t, syscall.SIGTERM)
}

// signal sends sig and returns the exit code (-1 for a kill).
func (p *edProcess) signal(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	_ = p.cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
		t.Fatalf("process did not exit within 15s of %v; stderr:\n%s", sig, p.Stderr())
	}
	return p.cmd.ProcessState.ExitCode()
}

var edForwardingLine = regexp.MustCompile(`^sandmux: forwarding (\S+) -> (\S+) in (\S+)$`)

// edEchoMany opens n concurrent connections to addr; each sends size
// random bytes, half-closes, and must read back exactly what it sent.
func edEchoMany(t *testing.T, addr string, n, size int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- edEchoOnce(addr, size, i)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func edEchoOnce(addr string, size, i int) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return fmt.Errorf("conn %d: %w", i, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	payload := make([]byte, size)
	_, _ = rand.Read(payload)
	want := sha256.Sum256(payload)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	got, err := io.Copy(h, c)
	if err := <-werr; err != nil {
		return fmt.Errorf("conn %d: write: %w", i, err)
	}
	if err != nil {
		return fmt.Errorf("conn %d: read after %d bytes: %w", i, got, err)
	}
	if got != int64(size) || !bytes.Equal(h.Sum(nil), want[:]) {
		return fmt.Errorf("conn %d: read back %d bytes, checksum match %v; want %d bytes", i, got, bytes.Equal(h.Sum(nil), want[:]), size)
	}
	return nil
}

// TestForwardSharesOneWebSocket: 50 concurrent connections through one -L
// listener, via the agent, reach an allowlisted echo target byte for byte
// (half-close carried) on exactly one WebSocket.
func TestForwardSharesOneWebSocket(t *testing.T) {
	t.Parallel()
	echo := testutil.EchoServer(t).Addr
	srv := startServer(t, serverOpts{Allow: []string{echo}})
	dir := newAgentDir(t)
	ctx := testContext(t, 3*time.Minute)

	fwd := edStart(t, ctx, nil, "forward", "-L", "127.0.0.1:0:"+echo, "--url", srv.URL, "--agent-dir", dir, "box")
	m := fwd.waitLine(t, edForwardingLine, 20*time.Second)
	if m[2] != echo || m[3] != "box" {
		t.Fatalf("forwarding line %q: want -> %s in box", m[0], echo)
	}
	edEchoMany(t, m[1], 50, 256<<10)
	if got := srv.Count(logSessionStarted); got != 1 {
		t.Errorf("server saw %d WebSockets for 50 forwarded connections, want exactly 1\n%s", got, srv.Log())
	}
	st := onlySession(t, status(t, dir))
	if st.StreamsTotal != 50 {
		t.Errorf("agent session carried %d streams, want 50", st.StreamsTotal)
	}
	if code := fwd.stop(t); code != 0 {
		t.Errorf("forward exited %d on SIGTERM, want 0; stderr:\n%s", code, fwd.Stderr())
	}
}

// TestForwardNoAgent: --no-agent dials one session of its own for every
// connection, and a target the server does not allow costs one line.
func TestForwardNoAgent(t *testing.T) {
	t.Parallel()
	echo := testutil.EchoServer(t).Addr
	other := testutil.EchoServer(t).Addr
	srv := startServer(t, serverOpts{Allow: []string{echo}})
	ctx := testContext(t, 3*time.Minute)

	fwd := edStart(t, ctx, nil, "forward", "--no-agent", "-L", "0:"+echo, "-L", "0:"+other, "--url", srv.URL, "box")
	m1 := fwd.waitLine(t, edForwardingLine, 20*time.Second)
	m2 := fwd.waitLine(t, edForwardingLine, 20*time.Second)
	if m1[2] != echo || m2[2] != other {
		t.Fatalf("forwarding lines %q, %q", m1[0], m2[0])
	}
	edEchoMany(t, m1[1], 20, 64<<10)

	// Reset: on loopback the reset can come before connect returns.
	if c, err := net.Dial("tcp", m2[1]); err == nil {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if n, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("a connection to a refused target read %d bytes, then %v; want a reset", n, err)
		}
		_ = c.Close()
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatal(err)
	}
	want := fmt.Sprintf("sandmux: forward %s -> %s: server refused target %s: not allowed (add --allow %s to `sandmux server` in the sandbox)", m2[1], other, other, other)
	fwd.waitLine(t, regexp.MustCompile("^"+regexp.QuoteMeta(want)+"$"), 20*time.Second)

	if got := srv.Count(logSessionStarted); got != 1 {
		t.Errorf("server saw %d WebSockets, want 1 (--no-agent shares its own session)\n%s", got, srv.Log())
	}
	if code := fwd.stop(t); code != 0 {
		t.Errorf("forward exited %d on SIGTERM, want 0; stderr:\n%s", code, fwd.Stderr())
	}
}

// edForward starts `sandmux forward -L 127.0.0.1:0:target` through the
// agent (mode "agent") or not ("no-agent") and returns it with its
// forwarding line's fields.
func edForward(t *testing.T, ctx context.Context, url, target, mode string) (*edProcess, []string) {
	t.Helper()
	args := []string{"forward", "-L", "127.0.0.1:0:" + target, "--url", url}
	if mode == "agent" {
		args = append(args, "--agent-dir", newAgentDir(t))
	} else {
		args = append(args, "--no-agent")
	}
	fwd := edStart(t, ctx, nil, append(args, "box")...)
	return fwd, fwd.waitLine(t, edForwardingLine, 20*time.Second)
}

// TestForwardCutIsReset: a forwarded connection whose tunnel is cut for
// good (the server restarted, so the session cannot resume) is reset, so
// that its client cannot take the bytes it got for the whole, and forward
// says why in one line; through the agent and with --no-agent.
func TestForwardCutIsReset(t *testing.T) {
	t.Parallel()
	echo := testutil.EchoServer(t).Addr
	for _, mode := range []string{"agent", "no-agent"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, serverOpts{Allow: []string{echo}})
			ctx := testContext(t, 2*time.Minute)
			fwd, m := edForward(t, ctx, srv.URL, echo, mode)
			c := dialEchoed(t, m[1])
			srv.Kill()
			srv.Restart()
			n, err := io.Copy(io.Discard, c)
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("the local client read %d more bytes and then %v, want a reset", n, err)
			}
			fwd.waitLine(t, regexp.MustCompile("^sandmux: forward "+regexp.QuoteMeta(m[1]+" -> "+echo)+": session to box could not be resumed: .*; connect again for a fresh session$"), 20*time.Second)
			if code := fwd.stop(t); code != 0 {
				t.Errorf("forward exited %d on SIGTERM, want 0; stderr:\n%s", code, fwd.Stderr())
			}
		})
	}
}

// TestForwardTargetResetIsReset: a target that resets its connection
// mid-transfer resets the forwarded one too, never a clean end.
func TestForwardTargetResetIsReset(t *testing.T) {
	t.Parallel()
	target := testutil.ResettingServer(t, 64<<10).Addr
	srv := startServer(t, serverOpts{Allow: []string{target}})
	ctx := testContext(t, 2*time.Minute)
	for _, mode := range []string{"agent", "no-agent"} {
		fwd, m := edForward(t, ctx, srv.URL, target, mode)
		c, err := net.Dial("tcp", m[1])
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		if _, err := io.ReadFull(c, make([]byte, 64<<10)); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if n, err := io.Copy(io.Discard, c); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("%s: the local client read %d more bytes, then %v; want a reset", mode, n, err)
		}
		_ = c.Close()
		if code := fwd.stop(t); code != 0 {
			t.Errorf("%s: forward exited %d on SIGTERM; stderr:\n%s", mode, code, fwd.Stderr())
		}
	}
}

// TestForwardLocalResetIsReset: a local client that resets its connection
// mid-upload resets the target's connection too, so that the target
// cannot take the part it got for the whole upload, while an upload that
// ends cleanly arrives whole; through the agent and with --no-agent.
func TestForwardLocalResetIsReset(t *testing.T) {
	t.Parallel()
	target, drained := testutil.DrainServer(t)
	srv := startServer(t, serverOpts{Allow: []string{target.Addr}})
	ctx := testContext(t, 2*time.Minute)
	const size = 1 << 20
	for _, mode := range []string{"agent", "no-agent"} {
		fwd, m := edForward(t, ctx, srv.URL, target.Addr, mode)
		for _, clean := range []bool{true, false} {
			c, err := net.Dial("tcp", m[1])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(make([]byte, size)); err != nil {
				t.Fatalf("%s: %v", mode, err)
			}
			if clean {
				_ = c.(*net.TCPConn).CloseWrite()
			} else {
				_ = c.(*net.TCPConn).SetLinger(0)
			}
			_ = c.Close()
			select {
			case d := <-drained:
				switch {
				case clean && (d.Err != nil || d.N != size):
					t.Errorf("%s, clean end: the target read %d bytes, then %v; want %d and its end", mode, d.N, d.Err, size)
				case !clean && !errors.Is(d.Err, syscall.ECONNRESET):
					t.Errorf("%s, local reset: the target read %d bytes, then %v; want a reset", mode, d.N, d.Err)
				}
			case <-ctx.Done():
				t.Fatalf("%s: the target's connection did not end", mode)
			}
		}
		if code := fwd.stop(t); code != 0 {
			t.Errorf("%s: forward exited %d on SIGTERM; stderr:\n%s", mode, code, fwd.Stderr())
		}
	}
}

// TestForwardDeathResetsLocal: a forward killed (SIGKILL) or hung up on
// (its terminal closed) mid-download resets its local connections, never
// ends them cleanly, through the agent and with --no-agent; a hang-up
// stops it as SIGTERM does.
func TestForwardDeathResetsLocal(t *testing.T) {
	t.Parallel()
	target := testutil.SourceServer(t)
	srv := startServer(t, serverOpts{Allow: []string{target.Addr}})
	ctx := testContext(t, 2*time.Minute)
	for _, mode := range []string{"agent", "no-agent"} {
		for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGHUP} {
			fwd, m := edForward(t, ctx, srv.URL, target.Addr, mode)
			c, err := net.Dial("tcp", m[1])
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(time.Minute))
			if _, err := io.ReadFull(c, make([]byte, 1<<20)); err != nil {
				t.Fatalf("%s: %v", mode, err)
			}
			code := fwd.signal(t, sig)
			if n, err := io.Copy(io.Discard, c); !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("%s, %v: the local client read %d more bytes, then %v; want a reset", mode, sig, n, err)
			}
			if sig == syscall.SIGHUP && code != 0 {
				t.Errorf("%s: forward exited %d on SIGHUP, want 0; stderr:\n%s", mode, code, fwd.Stderr())
			}
			_ = c.Close()
		}
	}
}

// TestForwardBackground: --background detaches, prints its pid, keeps
// forwarding, is listed by `sandmux status`, and leaves nothing behind
// after SIGTERM.
func TestForwardBackground(t *testing.T) {
	t.Parallel()
	echo := testutil.EchoServer(t).Addr
	srv := startServer(t, serverOpts{Allow: []string{echo}})
	dir := newAgentDir(t)
	ctx := testContext(t, 2*time.Minute)

	r := run(sandmux(ctx, nil, "forward", "--background", "-L", "0:"+echo, "--url", srv.URL, "--agent-dir", dir, "box"), "")
	if r.err != nil {
		t.Fatalf("forward --background: %s", r)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(r.stdout))
	if err != nil {
		t.Fatalf("forward --background printed %q on stdout, want its pid", r.stdout)
	}
	t.Cleanup(func() {
		if !processGone(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	m := regexp.MustCompile(`(?m)^sandmux: forwarding (\S+) -> (\S+) in box$`).FindStringSubmatch(r.stderr)
	if m == nil || !strings.Contains(r.stderr, fmt.Sprintf("forward running in the background (pid %d, log ", pid)) {
		t.Fatalf("forward --background stderr:\n%s", r.stderr)
	}
	edEchoMany(t, m[1], 5, 32<<10)

	sr := run(sandmux(ctx, nil, "status", "--agent-dir", dir), "")
	if sr.err != nil || !regexp.MustCompile(fmt.Sprintf(`(?m)^%d\s+%s\s+%s\s+box\s`, pid, regexp.QuoteMeta(m[1]), regexp.QuoteMeta(echo))).MatchString(sr.stdout) {
		t.Fatalf("sandmux status does not list the forward:\n%s", sr)
	}
	jr := run(sandmux(ctx, nil, "status", "--json", "--agent-dir", dir), "")
	var js struct {
		Forwards []struct {
			PID      int `json:"pid"`
			Forwards []struct{ Listen, Target string }
		} `json:"forwards"`
	}
	if err := json.Unmarshal([]byte(jr.stdout), &js); err != nil || len(js.Forwards) != 1 || js.Forwards[0].PID != pid {
		t.Fatalf("status --json forwards: %v\n%s", err, jr)
	}

	_ = syscall.Kill(pid, syscall.SIGTERM)
	waitFor(t, 15*time.Second, "the background forward to exit", func() (bool, string) { return processGone(pid), "" })
	sr = run(sandmux(ctx, nil, "status", "--agent-dir", dir), "")
	if strings.Contains(sr.stdout, "background forwards") {
		t.Errorf("status still lists the stopped forward:\n%s", sr)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "forwards", "*"))
	if len(left) != 0 {
		t.Errorf("a cleanly stopped forward left %q", left)
	}

	// A listener that cannot bind is reported by the starting process.
	busy := m[1] // nothing listens there any more; take it for the test
	ln, err := net.Listen("tcp", busy)
	if err != nil {
		t.Skipf("cannot re-take %s: %v", busy, err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(busy)
	r = run(sandmux(ctx, nil, "forward", "--background", "-L", port+":"+echo, "--url", srv.URL, "--agent-dir", dir, "box"), "")
	if r.err == nil || !strings.Contains(r.stderr, "sandmux: the background forward did not start: -L "+port+":"+echo+": "+busy+" is in use (another forward, or a program listening there?): pick another local port, or 0 for a free one") {
		t.Errorf("forward --background on a taken port: %s", r)
	}
}

// TestSSHConfigBlockReachesSSHD: the block ssh-config prints, with only
// the test's key and known_hosts added, makes real `ssh NAME.test` reach
// sshd through the tunnel.
func TestSSHConfigBlockReachesSSHD(t *testing.T) {
	t.Parallel()
	sshd := startSSHD(t)
	srv := startServer(t, serverOpts{Target: sshd.Addr})
	dir := newAgentDir(t)
	ctx := testContext(t, 2*time.Minute)

	r := run(sandmux(ctx, nil, "ssh-config", "--host-pattern", "*.test", "--user", sshd.User, "--url", srv.URL+"/{host}"), "")
	if r.err != nil {
		t.Fatalf("ssh-config: %s", r)
	}
	wantProxy := fmt.Sprintf("    ProxyCommand %s proxy --strip-suffix .test --url '%s/{host}' %%h\n", sandmuxBin, srv.URL)
	for _, want := range []string{"Host *.test\n", "    User " + sshd.User + "\n", wantProxy, "    ServerAliveInterval 30\n", "    ServerAliveCountMax 21\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("ssh-config output lacks %q:\n%s", want, r.stdout)
		}
	}
	sshThroughBlock(ctx, t, sshd, dir, r.stdout, "box1.test")
	if s := onlySession(t, status(t, dir)); s.URL != srv.URL+"/box1" {
		t.Errorf("the proxy dialed %s, want %s/box1 (suffix .test stripped)", s.URL, srv.URL)
	}
}

// TestSSHConfigUpperCasePattern: ssh matches a Host pattern against the
// name as typed but passes %h lower-cased, so the block of
// `ssh-config --host-pattern '*.TEST'` must strip ".TEST" from
// "box2.test"; it used to dial .../box2.test.
func TestSSHConfigUpperCasePattern(t *testing.T) {
	t.Parallel()
	sshd := startSSHD(t)
	srv := startServer(t, serverOpts{Target: sshd.Addr})
	dir := newAgentDir(t)
	ctx := testContext(t, 2*time.Minute)

	r := run(sandmux(ctx, nil, "ssh-config", "--host-pattern", "*.TEST", "--user", sshd.User, "--url", srv.URL+"/{host}"), "")
	if r.err != nil {
		t.Fatalf("ssh-config: %s", r)
	}
	sshThroughBlock(ctx, t, sshd, dir, r.stdout, "BOX2.TEST")
	if s := onlySession(t, status(t, dir)); s.URL != srv.URL+"/box2" {
		t.Errorf("the proxy dialed %s, want %s/box2 (suffix .TEST stripped from ssh's lower-cased %%h)", s.URL, srv.URL)
	}
}

// sshThroughBlock runs `ssh HOST echo ok` with the block ssh-config
// printed and only the test's key and known_hosts added, through the
// agent in dir.
func sshThroughBlock(ctx context.Context, t *testing.T, sshd *sshtest.Server, dir, block, host string) {
	t.Helper()
	cfg := block + strings.Join([]string{
		"    IdentityFile " + sshd.KeyFile,
		"    IdentitiesOnly yes",
		"    IdentityAgent none",
		"    BatchMode yes",
		"    StrictHostKeyChecking yes",
		"    UserKnownHostsFile " + filepath.Join(sshd.Dir, "known_hosts"),
		"    GlobalKnownHostsFile /dev/null",
		"    UpdateHostKeys no",
		"    LogLevel ERROR",
		"    ConnectTimeout 20",
	}, "\n") + "\n"
	cfgPath := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "ssh", "-F", cfgPath, host, "echo", "ok")
	cmd.Env = childEnv("SANDMUX_AGENT_DIR=" + dir)
	cmd.WaitDelay = 10 * time.Second
	if r := run(cmd, ""); r.err != nil || r.stdout != "ok\n" {
		t.Fatalf("ssh -F <ssh-config block> %s echo ok:\n%s\n--- config ---\n%s", host, r, cfg)
	}
}

// edDoctor runs `sandmux doctor` and returns its result.
func edDoctor(ctx context.Context, args ...string) result {
	return run(sandmux(ctx, nil, append([]string{"doctor", "--probe", "1s", "--timeout", "10s"}, args...)...), "")
}

// edVerdict returns doctor's verdict and fix lines.
func edVerdict(r result) (string, string) {
	var v, f string
	for _, l := range strings.Split(r.stdout, "\n") {
		if s, ok := strings.CutPrefix(l, "verdict: "); ok {
			v = s
		}
		if s, ok := strings.CutPrefix(l, "fix: "); ok {
			f = s
		}
	}
	return v, f
}

func TestDoctor(t *testing.T) {
	t.Parallel()
	sshd := startSSHD(t)
	// Each subtest has its own deadline, from when it runs: they wait
	// for a parallel slot behind the package's other tests, and on a
	// loaded machine one deadline set here had run out before the last
	// of them started ("context deadline exceeded after 0s").

	t.Run("healthy", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 3*time.Minute)
		echo := testutil.EchoServer(t).Addr
		srv := startServer(t, serverOpts{Target: sshd.Addr, Allow: []string{echo}})
		r := edDoctor(ctx, "--url", srv.URL, "box")
		v, _ := edVerdict(r)
		if r.err != nil || v != "healthy: ssh, scp and sftp through "+srv.URL+" should work" {
			t.Fatalf("doctor on a healthy server: verdict %q\n%s", v, r)
		}
		for _, want := range []string{
			"PASS  url       " + srv.URL, "PASS  dns       127.0.0.1 is an IP address", "PASS  tcp       connected to " + srv.Addr,
			"SKIP  tls       ws:// URL", "PASS  auth      accepted without credentials", "PASS  upgrade   101 Switching Protocols",
			"PASS  protocol  sandmux.v2", "SKIP  version   not reported", "PASS  target    stream to the default target; its banner: SSH-2.0-OpenSSH",
			"PASS  rtt       5 pings: min ", "PASS  probe     latency: ",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("doctor output lacks %q:\n%s", want, r.stdout)
			}
		}
		// Throughput through an allowlisted echo service.
		r = edDoctor(ctx, "--url", srv.URL, "--probe-target", echo, "box")
		if v, _ := edVerdict(r); r.err != nil || !strings.HasPrefix(v, "healthy") || !strings.Contains(r.stdout, "PASS  probe     throughput through "+echo+": ") {
			t.Errorf("doctor --probe-target %s:\n%s", echo, r)
		}
		// JSON.
		r = edDoctor(ctx, "--json", "--probe", "0", "--url", srv.URL, "box")
		var rep struct {
			OK      bool   `json:"ok"`
			Verdict string `json:"verdict"`
			Steps   []struct {
				Name, Status, Detail string
			} `json:"steps"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || !rep.OK || len(rep.Steps) != 11 || rep.Steps[10].Status != "skip" {
			t.Errorf("doctor --json: %v %+v\n%s", err, rep, r)
		}
	})

	t.Run("wrong token", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 3*time.Minute)
		srv := startServer(t, serverOpts{Target: sshd.Addr, Token: "right"})
		r := edDoctor(ctx, "--url", srv.URL, "--token", "wrong", "box")
		v, fix := edVerdict(r)
		if r.exitCode() != 1 || v != "FAIL at auth: 401 Unauthorized: the server refused the credentials" ||
			fix != "the token is wrong: use the one `sandmux server` was started with (--token, --token-file or SANDMUX_TOKEN)" {
			t.Errorf("doctor with a wrong token: verdict %q, fix %q\n%s", v, fix, r)
		}
		if r.stderr != "" {
			t.Errorf("doctor printed on stderr: %q", r.stderr)
		}
	})

	t.Run("refused target", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 3*time.Minute)
		closed := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
		srv := startServer(t, serverOpts{Target: closed})
		r := edDoctor(ctx, "--url", srv.URL, "box")
		v, fix := edVerdict(r)
		if r.exitCode() != 1 || v != "FAIL at target: "+closed+" refused the connection inside the sandbox (is the service listening?)" ||
			fix != "start sshd in the sandbox, or point `sandmux server --target` at the port it listens on" {
			t.Errorf("doctor with a refused target: verdict %q, fix %q\n%s", v, fix, r)
		}
	})

	// A --target that is not an SSH server (a service whose client speaks
	// first, as forward users check) passes with a warning and a verdict
	// for forward; an allowlisted one where nothing listens is told so,
	// not to start sshd.
	t.Run("service target", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 3*time.Minute)
		echo := testutil.EchoServer(t).Addr
		closed := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
		srv := startServer(t, serverOpts{Target: sshd.Addr, Allow: []string{echo, closed}})
		r := edDoctor(ctx, "--url", srv.URL, "--target", echo, "--timeout", "1s", "--probe", "0", "box")
		v, _ := edVerdict(r)
		if r.err != nil || v != "healthy: streams to "+echo+" through "+srv.URL+" work (it is not an SSH server: for `sandmux forward`, not ssh)" ||
			!strings.Contains(r.stdout, "WARN  target    stream to "+echo+" opened; it sent nothing within 1s") {
			t.Errorf("doctor --target %s (silent until spoken to): verdict %q\n%s", echo, v, r)
		}
		r = edDoctor(ctx, "--url", srv.URL, "--target", closed, "box")
		v, fix := edVerdict(r)
		if r.exitCode() != 1 || !strings.HasPrefix(v, "FAIL at target: ") ||
			fix != "nothing listens on "+closed+" in the sandbox: start the service there, or check --target" {
			t.Errorf("doctor --target %s (nothing listening): verdict %q, fix %q\n%s", closed, v, fix, r)
		}
	})

	t.Run("raw bridge", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 3*time.Minute)
		bridge := startRawBridge(t, sshd.Addr)
		r := edDoctor(ctx, "--url", bridge.URL, "box")
		v, fix := edVerdict(r)
		if r.err != nil || v != "works, degraded: "+bridge.URL+" is a raw WebSocket bridge, not `sandmux server`: each connection needs a WebSocket of its own, nothing is shared or resumed" ||
			fix != "run `sandmux server` in the sandbox in place of websocat (README: Migrating from websocat)" {
			t.Errorf("doctor on a raw bridge: verdict %q, fix %q\n%s", v, fix, r)
		}
		if !strings.Contains(r.stdout, "WARN  protocol  none") || !strings.Contains(r.stdout, "its banner: SSH-2.0-") {
			t.Errorf("doctor on a raw bridge:\n%s", r.stdout)
		}
	})

	t.Run("plain http", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 3*time.Minute)
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "<html>hello</html>\n")
		}))
		defer hs.Close()
		url := "ws" + strings.TrimPrefix(hs.URL, "http")
		r := edDoctor(ctx, "--url", url, "box")
		v, fix := edVerdict(r)
		if r.exitCode() != 1 || v != "FAIL at upgrade: 200 OK: no WebSocket upgrade" ||
			fix != "that is a plain HTTP server, not a WebSocket endpoint: check the port in --url (`sandmux server` listens on 8081)" {
			t.Errorf("doctor on a plain HTTP server: verdict %q, fix %q\n%s", v, fix, r)
		}
	})

	t.Run("e2b edge", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 3*time.Minute)
		// E2B's edge answers in JSON for a sandbox it cannot reach.
		for _, tc := range []struct {
			status             int
			body, verdict, fix string
		}{
			{http.StatusNotFound, `{"sandboxId":"box","message":"The sandbox was not found"}`,
				"FAIL at upgrade: 404 Not Found: The sandbox was not found",
				"check the URL and that the sandbox exists; a plain web server at that port answers 404 too"},
			{http.StatusConflict, `{"sandboxId":"box","message":"The sandbox is paused","code":409,"canAutoResume":false}`,
				"FAIL at upgrade: 409 Conflict: The sandbox is paused",
				"the sandbox is paused or changing state: resume it (E2B: Sandbox.connect), or try again in a moment"},
			{http.StatusForbidden, `{"sandboxId":"box","message":"Sandbox is secured with traffic access token. Token header 'e2b-traffic-access-token' is missing","code":403}`,
				"FAIL at auth: 403 Forbidden: Sandbox is secured with traffic access token. Token header 'e2b-traffic-access-token' is missing",
				"check --token/SANDMUX_TOKEN and --header values such as 'e2b-traffic-access-token: TOKEN' (restricted sandboxes)"},
		} {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			url := "ws" + strings.TrimPrefix(hs.URL, "http")
			r := edDoctor(ctx, "--url", url, "box")
			hs.Close()
			if v, fix := edVerdict(r); r.exitCode() != 1 || v != tc.verdict || fix != tc.fix {
				t.Errorf("doctor behind an edge answering %d: verdict %q, fix %q\n%s", tc.status, v, fix, r)
			}
		}
	})

	t.Run("sshd port", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 3*time.Minute)
		r := edDoctor(ctx, "--url", "ws://"+sshd.Addr, "box")
		v, fix := edVerdict(r)
		if r.exitCode() != 1 || !strings.HasPrefix(v, "FAIL at upgrade: ws://"+sshd.Addr+`: the server did not answer in HTTP: it sent "SSH-2.0-`) ||
			fix != "that port speaks another protocol: put `sandmux server`'s port in --url (it listens on 8081)" {
			t.Errorf("doctor on an sshd port: verdict %q, fix %q\n%s", v, fix, r)
		}
	})

	t.Run("nothing listening", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 3*time.Minute)
		port := testutil.FreePort(t)
		r := edDoctor(ctx, "--url", fmt.Sprintf("ws://127.0.0.1:%d", port), "box")
		if v, _ := edVerdict(r); r.exitCode() != 1 || v != fmt.Sprintf("FAIL at tcp: 127.0.0.1:%d refused the connection", port) {
			t.Errorf("doctor with nothing listening: verdict %q\n%s", v, r)
		}
	})
}

// TestDoctorTLS: over wss, doctor shows the certificate, and an untrusted
// one is the verdict with --ca as the fix.
func TestDoctorTLS(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 2*time.Minute)
	banner := edBannerTarget(t)
	cfg := server.DefaultConfig()
	cfg.Target = banner
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted case's handshake errors
	ts.StartTLS()
	t.Cleanup(func() {
		ts.CloseClientConnections()
		_ = srv.Close()
		ts.Close()
	})
	url := "wss" + strings.TrimPrefix(ts.URL, "https")

	r := edDoctor(ctx, "--url", url, "box")
	v, fix := edVerdict(r)
	if r.exitCode() != 1 || v != "FAIL at tls: certificate CN=example.com (issuer Acme Co) not trusted: signed by an unknown authority" ||
		fix != "pass the server's CA with --ca FILE, or --insecure to skip verification (testing only)" {
		t.Errorf("doctor on an untrusted certificate: verdict %q, fix %q\n%s", v, fix, r)
	}

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	cert := ts.Certificate()
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	r = edDoctor(ctx, "--url", url, "--ca", caFile, "box")
	want := fmt.Sprintf("PASS  tls       %s, certificate CN=example.com (issuer Acme Co), expires %s (", tls.VersionName(tls.VersionTLS13), cert.NotAfter.UTC().Format("2006-01-02"))
	if v, _ := edVerdict(r); r.err != nil || !strings.HasPrefix(v, "healthy") || !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "its banner: SSH-2.0-fake") {
		t.Errorf("doctor --ca: want %q\n%s", want, r)
	}
}

// edBannerTarget answers each connection with an SSH banner and waits
// for the peer to close.
func edBannerTarget(t *testing.T) string {
	t.Helper()
	return testutil.Serve(t, func(c net.Conn) {
		_, _ = io.WriteString(c, "SSH-2.0-fake\r\n")
		_, _ = io.Copy(io.Discard, c)
	}).Addr
}

// edOpenPTY returns a pseudo-terminal's master and slave.
func edOpenPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		_ = ptmx.Close()
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		_ = ptmx.Close()
		t.Skipf("ptsname: %v", err)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		_ = ptmx.Close()
		t.Skipf("open pts: %v", err)
	}
	return ptmx, pts
}

// TestProxyReconnectLine: a proxy that waits more than 2 s for the agent
// to reconnect draws one updating line on its terminal and clears it; with
// stderr not a terminal it prints nothing.
func TestProxyReconnectLine(t *testing.T) {
	echo := testutil.EchoServer(t).Addr
	srv := startServer(t, serverOpts{Target: echo})
	dir := newAgentDir(t)
	ctx := testContext(t, 3*time.Minute)
	args := []string{"proxy", "--url", srv.URL, "--agent-dir", dir, "--no-resume", "--connect-timeout", "60s", "box"}

	if r := run(sandmux(ctx, nil, args...), "hello\n"); r.err != nil || r.stdout != "hello\n" {
		t.Fatalf("first proxy: %s", r)
	}

	// Through a terminal.
	srv.Kill()
	ptmx, pts := edOpenPTY(t)
	var screen bytes.Buffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		_, _ = io.Copy(&screen, ptmx) // ends with EIO once every slave fd is closed
	}()
	cmd := sandmux(ctx, nil, args...)
	var out bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader("again\n"), &out, pts
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = pts.Close()
	// The outage is what is under test, not a wait for an event: it must
	// outlast the proxy's 2 s quiet period (reconnectQuiet) by enough
	// for the line to be drawn and updated before the server is back.
	time.Sleep(3500 * time.Millisecond)
	srv.Restart()
	err := cmd.Wait()
	<-read
	_ = ptmx.Close()
	if err != nil || out.String() != "again\n" {
		t.Fatalf("proxy through a reconnect: %v, stdout %q, terminal %q", err, out.String(), screen.String())
	}
	tty := screen.String()
	if !regexp.MustCompile(`^(\rsandmux: reconnecting to box \(attempt \d+, (next in \d+\.\ds|dialing)\)\x1b\[K)+\r\x1b\[K$`).MatchString(tty) {
		t.Errorf("terminal shows %q; want updating reconnect lines, then the line cleared", tty)
	}

	// Not a terminal: silence.
	srv.Kill()
	cmd = sandmux(ctx, nil, args...)
	var errb bytes.Buffer
	out.Reset()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader("third\n"), &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// As above, an outage past the quiet period: long enough that a
	// terminal would have been drawn on, which a pipe must not be.
	time.Sleep(3 * time.Second)
	srv.Restart()
	if err := cmd.Wait(); err != nil || out.String() != "third\n" || errb.String() != "" {
		t.Errorf("proxy with stderr not a terminal: %v, stdout %q, stderr %q", err, out.String(), errb.String())
	}
}

// TestBashCompletion: the bash script completes subcommands and flags by
// asking the binary.
func TestBashCompletion(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	ctx := testContext(t, time.Minute)
	script := `source <(sandmux completion bash)
COMP_WORDS=(sandmux do); COMP_CWORD=1; _sandmux_bash_autocomplete; echo "${COMPREPLY[@]}"
COMP_WORDS=(sandmux forward --no-a); COMP_CWORD=2; _sandmux_bash_autocomplete; echo "${COMPREPLY[@]}"`
	cmd := exec.CommandContext(ctx, "bash", "--norc", "--noprofile", "-c", script)
	cmd.Env = childEnv("PATH=" + filepath.Dir(sandmuxBin) + ":" + os.Getenv("PATH"))
	if r := run(cmd, ""); r.err != nil || r.stdout != "doctor\n--no-agent\n" {
		t.Errorf("bash completion: %s", r)
	}
}

// TestServerMetrics: after known traffic, a edScrape of --metrics-listen
// shows matching counters; the public listener serves no metrics.
func TestServerMetrics(t *testing.T) {
	t.Parallel()
	echo := testutil.EchoServer(t).Addr
	srv := startServer(t, serverOpts{Target: echo, Allow: []string{echo}, Token: "tok", Metrics: true})
	metricsAddr := srv.Metrics
	ctx := testContext(t, 2*time.Minute)

	cfg := client.DefaultConfig()
	cfg.URL, cfg.Token = srv.URL, "wrong"
	if s, err := client.Dial(ctx, cfg); err == nil {
		_ = s.Close()
		t.Fatal("a wrong token was accepted")
	}
	cfg.Token = "tok"
	sess, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const streams, size = 3, 100 << 10
	for range streams {
		st, err := sess.OpenStream(ctx, echo)
		if err != nil {
			t.Fatal(err)
		}
		payload := bytes.Repeat([]byte("m"), size)
		go func() { _, _ = st.Write(payload); _ = st.(interface{ CloseWrite() error }).CloseWrite() }()
		got, err := io.ReadAll(st)
		if err != nil || len(got) != size {
			t.Fatalf("echo stream: %d bytes, %v", len(got), err)
		}
		_ = st.Close()
	}
	if _, err := sess.OpenStream(ctx, "127.0.0.1:1"); err == nil {
		t.Fatal("a target not allowed was opened")
	}
	_ = sess.Close()

	want := map[string]float64{
		`sandmux_sessions_active`:                                                0,
		`sandmux_sessions_total{mode="sandmux"}`:                                 1,
		`sandmux_sessions_total{mode="raw"}`:                                     0,
		`sandmux_streams_active`:                                                 0,
		`sandmux_streams_total`:                                                  streams + 1,
		`sandmux_refusals_total{reason="auth"}`:                                  1,
		`sandmux_refusals_total{reason="target_not_allowed"}`:                    1,
		`sandmux_refusals_total{reason="target_failed"}`:                         0,
		`sandmux_refusals_total{reason="session_limit"}`:                         0,
		`sandmux_resumptions_total`:                                              0,
		`sandmux_handshake_duration_seconds_count{mode="sandmux.v2"}`:            1,
		`sandmux_handshake_duration_seconds_bucket{mode="sandmux.v2",le="+Inf"}`: 1,
	}
	var got map[string]float64
	waitFor(t, 20*time.Second, "the session to end in the metrics", func() (bool, string) {
		got = edScrape(t, "http://"+metricsAddr+"/metrics")
		return got["sandmux_sessions_active"] == 0 && got["sandmux_streams_active"] == 0, fmt.Sprint(got["sandmux_sessions_active"])
	})
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for _, dir := range []string{"in", "out"} {
		if g := got[`sandmux_bytes_total{direction="`+dir+`"}`]; g < streams*size {
			t.Errorf("sandmux_bytes_total{direction=%q} = %v, want at least %d", dir, g, streams*size)
		}
	}

	// The public listener has no metrics.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + srv.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired || strings.Contains(string(b), "sandmux_") {
		t.Errorf("public listener /metrics: %d %q", resp.StatusCode, b)
	}
}

// edScrape reads a Prometheus text exposition into "name{labels}" -> value.
func edScrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("edScrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out
}
