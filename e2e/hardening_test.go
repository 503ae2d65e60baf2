//go:build linux

package e2e

// Hardening: leaks under churn, and faults at each end of the tunnel
// (a client killed, a path frozen, a target killed, a server stopped) with
// real processes where it matters. These tests assert about time, so none
// is parallel (see agent_test.go).
//
// The agent socket's protection (directory 0700, socket 0600, peers of
// another uid refused) is covered by TestAgentSocketRefusesOtherUser.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/agent"
	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/netem"
	"github.com/sandmux/sandmux/internal/procstat"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
	"github.com/sandmux/sandmux/server"
)

// inProcessServer runs a sandmux server in this process on a loopback
// httptest server and returns its ws:// URL.
func inProcessServer(t *testing.T, mod func(*server.Config)) (*server.Server, string) {
	t.Helper()
	return testutil.SandmuxServer(t, func(c *server.Config) {
		c.Mux.KeepAliveInterval = time.Second
		c.Mux.DeadAfter = 15 * time.Second
		if mod != nil {
			mod(c)
		}
	})
}

// hardClient is a client config with the test's keepalive.
func hardClient(url string) client.Config {
	cfg := client.DefaultConfig()
	cfg.URL = url
	cfg.DialTimeout = 10 * time.Second
	cfg.Mux.KeepAliveInterval = time.Second
	cfg.Mux.DeadAfter = 15 * time.Second
	return cfg
}

// echoOnce sends msg on a new stream, half-closes, and reads the echo to
// its end.
func echoOnce(ctx context.Context, sess *client.Session, msg []byte) error {
	c, err := sess.OpenStream(ctx, "")
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer c.Close()
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		return fmt.Errorf("close write: %w", err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

// raceEnabled reports whether the test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// TestStreamChurnNoLeak: opening and closing 10,000 streams (2,000 under
// -race unless SANDMUX_SOAK is set) on one session (client library against an in-process server) leaves the
// process with the goroutines and file descriptors it had before.
func TestStreamChurnNoLeak(t *testing.T) {
	streams, workers := 10000, 8
	if raceEnabled() && os.Getenv("SANDMUX_SOAK") == "" {
		// Under the race detector a stream costs ~7 ms of CPU here; the
		// full count runs in plain `go test` and in the soak.
		streams = 2000
	}
	srv, url := inProcessServer(t, nil)
	ctx := testContext(t, 5*time.Minute)
	sess, err := client.Dial(ctx, hardClient(url))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	// Warm up pools and the session's own goroutines first.
	for range workers {
		if err := echoOnce(ctx, sess, []byte("warm-up")); err != nil {
			t.Fatal(err)
		}
	}
	settle := func() (int, int) {
		var g, f int
		pollUntil(10*time.Second, func() (bool, string) {
			g1, f1 := runtime.NumGoroutine(), testutil.OpenFDs(t)
			stable := g1 == g && f1 == f && srv.Stats().ActiveStreams == 0
			g, f = g1, f1
			return stable, ""
		})
		return g, f
	}
	baseG, baseFD := settle()

	start := time.Now()
	churnStreams(ctx, t, sess, streams, workers)
	t.Logf("%d streams opened, echoed and closed in %v", streams, time.Since(start).Round(time.Millisecond))
	if st := srv.Stats(); st.Streams < int64(streams) {
		t.Fatalf("server counted %d streams, want >= %d", st.Streams, streams)
	}

	var g, f int
	waitFor(t, 30*time.Second, "goroutines and fds back to their baseline", func() (bool, string) {
		g, f = runtime.NumGoroutine(), testutil.OpenFDs(t)
		why := fmt.Sprintf("goroutines %d (baseline %d), fds %d (baseline %d), server streams %d; %s",
			g, baseG, f, baseFD, srv.Stats().ActiveStreams, fdReport())
		return g <= baseG+5 && f <= baseFD+3 && srv.Stats().ActiveStreams == 0, why
	})
	t.Logf("goroutines %d → %d, fds %d → %d", baseG, g, baseFD, f)

	// OpenFDs collects garbage first, and a connection leaked but
	// unreachable is closed by its finalizer at a collection, as are
	// those of the churn above, which the collector ran through: so a
	// few hundred more streams with the collector off, and the sockets
	// counted as they are. Pipes are left out: the echo target's io.Copy
	// splices TCP to TCP through pipes the net package keeps in a
	// sync.Pool until a collection.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	baseSock := testutil.OpenSockets(t)
	churnStreams(ctx, t, sess, 200, workers)
	var sk int
	waitFor(t, 30*time.Second, "sockets back to their baseline, the collector off", func() (bool, string) {
		sk = testutil.OpenSockets(t)
		return sk <= baseSock && srv.Stats().ActiveStreams == 0,
			fmt.Sprintf("sockets %d (baseline %d), server streams %d; %s", sk, baseSock, srv.Stats().ActiveStreams, fdReport())
	})
	t.Logf("sockets %d → %d over 200 more streams, the collector off", baseSock, sk)
}

// churnStreams echoes n streams on sess, workers at a time.
func churnStreams(ctx context.Context, t *testing.T, sess *client.Session, n, workers int) {
	t.Helper()
	var next atomic.Int64
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if err := echoOnce(ctx, sess, []byte(strconv.FormatInt(i, 10))); err != nil {
					errs <- fmt.Errorf("stream %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// sink is a TCP target that swallows bytes and notes when its (single)
// connection ends.
type sink struct {
	addr  string
	bytes atomic.Int64
	ended chan struct{}
	at    atomic.Int64 // UnixNano of the end
}

func startSink(t *testing.T) *sink {
	t.Helper()
	s := &sink{ended: make(chan struct{})}
	var first atomic.Bool
	s.addr = testutil.Serve(t, func(c net.Conn) {
		if !first.CompareAndSwap(false, true) {
			return // the sink's connection is the first; the test makes no other
		}
		buf := make([]byte, 256<<10)
		for {
			n, err := c.Read(buf)
			s.bytes.Add(int64(n))
			if err != nil {
				s.at.Store(time.Now().UnixNano())
				close(s.ended)
				return
			}
		}
	}).Addr
	return s
}

// endedAfter is how long after since the sink's connection ended, waiting
// up to limit for it.
func (s *sink) endedAfter(t *testing.T, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	select {
	case <-s.ended:
		return time.Unix(0, s.at.Load()).Sub(since)
	case <-time.After(limit):
		t.Fatalf("the target connection was still open %v later (%d bytes received)", limit, s.bytes.Load())
		return 0
	}
}

// streamingProxy starts `sandmux proxy --no-agent` with stdin from
// /dev/zero, so it streams to the target as fast as it can, and waits
// until the target has received 4 MiB.
func streamingProxy(t *testing.T, url string, s *sink, extra ...string) (kill func()) {
	t.Helper()
	zero, err := os.Open("/dev/zero")
	if err != nil {
		t.Skipf("no /dev/zero: %v", err)
	}
	defer zero.Close()
	var stderr testutil.Buffer
	args := append([]string{"proxy", "--no-agent", "--keepalive", "1s", "--url", url}, extra...)
	cmd := sandmux(context.Background(), nil, append(args, "sandbox")...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = zero, io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	kill = func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	t.Cleanup(kill)
	waitFor(t, 20*time.Second, "the proxy to stream 4 MiB to the target", func() (bool, string) {
		select {
		case <-done:
			t.Fatalf("the proxy exited early: %s", stderr.String())
		default:
		}
		return s.bytes.Load() >= 4<<20, fmt.Sprintf("%d bytes", s.bytes.Load())
	})
	return kill
}

// TestClientKilledMidTransfer: when the client side disappears in the
// middle of a transfer, the server lets go of the target connection:
// at once when the client process dies (its kernel closes the TCP
// connection) with resumption off, after --resume-grace with it on, and
// within the keepalive bound when the path goes silent instead.
func TestClientKilledMidTransfer(t *testing.T) {
	const keepalive = time.Second
	t.Run("SIGKILL, no resumption", func(t *testing.T) {
		s := startSink(t)
		srv := startServer(t, serverOpts{Target: s.addr, Args: []string{"--resume-grace", "0", "--keepalive", "1s"}})
		kill := streamingProxy(t, srv.URL, s, "--no-resume")
		at := time.Now()
		kill()
		took := s.endedAfter(t, at, 10*time.Second)
		t.Logf("target closed %v after SIGKILL (%d MiB received)", took.Round(time.Millisecond), s.bytes.Load()>>20)
		if took > 3*time.Second {
			t.Errorf("the target was closed %v after the client died, want <= 3s", took)
		}
		waitFor(t, 5*time.Second, "the server to log the session's end", func() (bool, string) {
			return srv.Count(`msg="session ended"`) == 1, srv.Log()
		})
	})

	t.Run("SIGKILL, resumption with a 2s grace", func(t *testing.T) {
		const grace = 2 * time.Second
		s := startSink(t)
		srv := startServer(t, serverOpts{Target: s.addr, Args: []string{"--resume-grace", "2s", "--keepalive", "1s"}})
		kill := streamingProxy(t, srv.URL, s)
		at := time.Now()
		kill()
		took := s.endedAfter(t, at, 20*time.Second)
		t.Logf("target closed %v after SIGKILL with a %v grace", took.Round(time.Millisecond), grace)
		if took < grace-250*time.Millisecond {
			t.Errorf("the target was closed %v after the client died, before the %v resume grace", took, grace)
		}
		if took > grace+keepalive+2*time.Second {
			t.Errorf("the target was closed %v after the client died, want within %v grace + %v keepalive (+2s slack)", took, grace, keepalive)
		}
		if srv.Count(`msg="transport lost; waiting to resume"`) != 1 {
			t.Errorf("the server did not log waiting for a resume:\n%s", srv.Log())
		}
	})

	t.Run("frozen path, no resumption", func(t *testing.T) {
		s := startSink(t)
		srv := startServer(t, serverOpts{Target: s.addr, Args: []string{"--resume-grace", "0", "--keepalive", "1s"}})
		path, err := netem.Start(netem.Config{Target: srv.Addr})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { path.Thaw(); _ = path.Close() })
		streamingProxy(t, "ws://"+path.Addr(), s, "--no-resume")
		at := time.Now()
		path.Freeze()
		took := s.endedAfter(t, at, 20*time.Second)
		t.Logf("target closed %v after the path froze", took.Round(time.Millisecond))
		// Silent for 1.5x the keepalive is dead; the watchdog looks every
		// quarter interval.
		if took > 2*keepalive+time.Second {
			t.Errorf("the target was closed %v after the path froze, want within 2x the %v keepalive (+1s slack)", took, keepalive)
		}
		if srv.Count(`msg="session silent, closing"`) != 1 {
			t.Errorf("the server did not log the silent session:\n%s", srv.Log())
		}
	})
}

// sshdPID finds the sshd listener that sshtest started for dir: a child of
// this process running with dir's sshd_config.
func sshdPID(t *testing.T, dir string) int {
	t.Helper()
	cfg := filepath.Join(dir, "sshd_config")
	pids := processes(func(pid int, args []string) bool {
		// sshd rewrites its command line ("sshd: /usr/sbin/sshd -D -e -f
		// CFG [listener] ..."), so only a substring can be matched.
		return strings.Contains(strings.Join(args, " "), cfg) && parentOf(pid) == os.Getpid()
	})
	if len(pids) > 0 {
		return pids[0]
	}
	t.Fatalf("no sshd process for %s", cfg)
	return 0
}

// parentOf is pid's parent, or 0.
func parentOf(pid int) int {
	st, err := procstat.Read(pid)
	if err != nil {
		return 0
	}
	return st.PPID
}

// killDescendants SIGKILLs every descendant of pid (not pid itself) and
// returns how many it killed.
func killDescendants(pid int) int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		children[parentOf(p)] = append(children[parentOf(p)], p)
	}
	n := 0
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			if syscall.Kill(c, syscall.SIGKILL) == nil {
				n++
			}
			walk(c)
		}
	}
	walk(pid)
	return n
}

// fileSize is path's size, 0 while it does not exist.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// TestTargetKilledMidTransfer: two sshds behind one server; the agent
// carries an scp to the first and an idle ssh to the second on one
// session. Killing the first sshd's connection processes ends the scp
// promptly with a non-zero exit, while the ssh to the second, on the
// same session, carries on.
func TestTargetKilledMidTransfer(t *testing.T) {
	sshd1 := startSSHD(t, "scp")
	sshd2 := startSSHD(t)
	srv := startServer(t, serverOpts{Target: sshd1.Addr, Allow: []string{sshd2.Addr}, Env: []string{"SANDMUX_KEEPALIVE=1s"}})
	dir := newAgentDir(t)
	ctx := testContext(t, 3*time.Minute)
	proxy1 := proxyCommand(srv.URL, dir)
	proxy2 := proxyCommand(srv.URL, dir, "--target", sshd2.Addr)

	// The ssh to sshd #2 idles until the test lets it finish.
	tmp := t.TempDir()
	started, release := filepath.Join(tmp, "started"), filepath.Join(tmp, "release")
	idle := sshd2.Command(ctx, t, "ssh", proxy2, "sandbox",
		fmt.Sprintf("touch %s; while [ ! -e %s ]; do sleep 0.1; done; echo survived", started, release))
	idle.Env = childEnv()
	idleRes, _ := runAsync(idle)
	waitFor(t, 30*time.Second, "the idle ssh to start", func() (bool, string) {
		_, err := os.Stat(started)
		return err == nil, fmt.Sprint(err)
	})

	src := filepath.Join(t.TempDir(), "big.bin")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(4 << 30); err != nil { // sparse: reads cost nothing
		t.Fatal(err)
	}
	f.Close()
	remote := filepath.Join(sshd1.Dir, "big.bin")
	scp := sshd1.Command(ctx, t, "scp", proxy1, "-q", src, "sandbox:"+remote)
	scp.Env = childEnv()
	scpRes, scpDone := runAsync(scp)
	waitFor(t, 60*time.Second, "the scp to move 16 MiB", func() (bool, string) {
		select {
		case <-scpDone:
			return true, "scp ended"
		default:
		}
		return fileSize(remote) >= 16<<20, fmt.Sprintf("%d bytes", fileSize(remote))
	})
	select {
	case r := <-scpRes:
		t.Fatalf("scp ended before sshd was killed: %s", r)
	default:
	}

	killed := killDescendants(sshdPID(t, sshd1.Dir))
	at := time.Now()
	t.Logf("killed %d processes of sshd #1 at %d MiB", killed, fileSize(remote)>>20)
	select {
	case r := <-scpRes:
		took := time.Since(at)
		t.Logf("scp exited %d %v after its sshd died: %q", r.exitCode(), took.Round(time.Millisecond), r.stderr)
		if r.exitCode() == 0 {
			t.Errorf("scp exited 0 although its sshd was killed mid-transfer\n%s", r)
		}
		if took > 5*time.Second {
			t.Errorf("scp took %v to notice its sshd died, want <= 5s", took)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("scp still running 30s after its sshd was killed")
	}

	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-idleRes:
		if r.err != nil || r.stdout != "survived\n" {
			t.Errorf("the ssh to sshd #2 did not carry on:\n%s", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the ssh to sshd #2 did not finish")
	}
	// The same session (never redialed) still reaches both sshds: #1's
	// listener was not killed.
	sshEcho(ctx, t, sshd1, proxy1, nil, "again1")
	sshEcho(ctx, t, sshd2, proxy2, nil, "again2")
	if s := onlySession(t, status(t, dir)); s.Connects != 1 {
		t.Errorf("the agent's session connected %d times, want 1: %+v", s.Connects, s)
	}
	if n := srv.Count(`msg="session started"`); n != 1 {
		t.Errorf("the server saw %d sessions, want 1", n)
	}
}

// TestServerSIGTERMDrains50Streams: SIGTERM while 50 streams are busy
// and never finish ends the server at --shutdown-timeout with exit
// status 0, and every stream ends with an error that says its session
// ended.
func TestServerSIGTERMDrains50Streams(t *testing.T) {
	const streams = 50
	srv := startServer(t, serverOpts{Target: testutil.EchoServer(t).Addr, Args: []string{"--shutdown-timeout", "2s", "--keepalive", "1s"}})
	ctx := testContext(t, 2*time.Minute)
	sess, err := client.Dial(ctx, hardClient(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var moved atomic.Int64
	ended := make(chan error, streams)
	for i := range streams {
		c, err := sess.OpenStream(ctx, "")
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		defer c.Close()
		go func() { // keep writing until the stream breaks
			buf := make([]byte, 16<<10)
			for {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
		go func() {
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				moved.Add(int64(n))
				if err != nil {
					ended <- err
					return
				}
			}
		}()
	}
	waitFor(t, 30*time.Second, "all streams to carry data", func() (bool, string) {
		return moved.Load() >= 16<<20, fmt.Sprintf("%d bytes echoed", moved.Load())
	})
	code, took := srv.Terminate()
	t.Logf("server exited %d %v after SIGTERM with %d busy streams", code, took.Round(time.Millisecond), streams)
	if code != 0 {
		t.Errorf("server exited %d on SIGTERM, want 0\n%s", code, srv.Log())
	}
	if took < 2*time.Second || took > 2*time.Second+5*time.Second {
		t.Errorf("server took %v to exit, want its 2s --shutdown-timeout and at most the 5s after it to close", took)
	}
	for _, line := range []string{`msg="shutting down;`, `msg="streams still open at the shutdown timeout; closing them"`, `msg=stopped`} {
		if srv.Count(line) != 1 {
			t.Errorf("server log lacks %s:\n%s", line, srv.Log())
		}
	}
	for i := range streams {
		select {
		case err := <-ended:
			if err == nil || err == io.EOF || !errors.Is(err, mux.ErrSessionEnded) {
				t.Errorf("a stream ended with %v, want an error wrapping %v", err, mux.ErrSessionEnded)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d streams still open 10s after the server exited", streams-i, streams)
		}
	}
	select {
	case <-sess.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the client session is still open after the server exited")
	}
}

// TestServerSIGHUPDrains: a hang-up (the shell that started the server
// closed, or an operator's kill -HUP) drains the server as SIGTERM does.
// Left to Go's default it killed the server at once: no close reached
// the clients, which then tried to resume a session that was gone for
// their whole --resume-timeout (10 m) instead of being told.
func TestServerSIGHUPDrains(t *testing.T) {
	srv := startServer(t, serverOpts{Target: testutil.EchoServer(t).Addr, Args: []string{"--shutdown-timeout", "1s"}})
	ctx := testContext(t, time.Minute)
	sess, _ := echoStream(ctx, t, srv.URL)
	code, took := srv.Stop(syscall.SIGHUP)
	if code != 0 {
		t.Errorf("server exited %d after %v on SIGHUP, want 0 after its drain\n%s", code, took, srv.Log())
	}
	if srv.Count(`msg="shutting down;`, `cause="hangup signal received"`) != 1 {
		t.Errorf("server log does not say it shut down on the hang-up:\n%s", srv.Log())
	}
	select {
	case <-sess.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("the client session still waits (resuming: %v) 10s after the server exited on SIGHUP, instead of ending", sess.Resuming())
	}
}

// TestServerOutlivesItsLogReader: a server whose stderr reader goes
// away (`sandmux server 2>&1 | logger` whose logger died, a supervisor's
// log pipe restarted) keeps serving. By Go's default the next log line
// raised SIGPIPE and killed it outright, every session with it.
func TestServerOutlivesItsLogReader(t *testing.T) {
	echo := testutil.EchoServer(t)
	addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sandmuxBin, "server", "--listen", addr, "--target", echo.Addr)
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()
	exited := make(chan error, 1)
	done := make(chan struct{})
	go func() { exited <- cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || !strings.Contains(line, "msg=listening") {
		t.Fatalf("first line %q, %v; want the server's listening line", line, err)
	}
	_ = pr.Close() // the log reader goes away

	// Bounded well below the test's limit: a session whose server died
	// waits to resume until its context ends, and then the exit is told.
	ctx := testContext(t, 20*time.Second)
	for i := range 2 { // each session logs as it starts and ends
		sess, err := client.Dial(ctx, hardClient("ws://"+addr))
		if err == nil {
			var c net.Conn
			if c, err = sess.OpenStream(ctx, ""); err == nil {
				_ = c.SetDeadline(time.Now().Add(15 * time.Second))
				if _, err = c.Write([]byte("ping")); err == nil {
					_, err = io.ReadFull(c, make([]byte, 4))
				}
			}
			_ = sess.Close()
		}
		if err != nil {
			select {
			case <-done:
				t.Fatalf("the server died once its log reader was gone: %v", <-exited)
			default:
			}
			t.Fatalf("session %d: %v", i+1, err)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("server exited with %v on SIGTERM, want 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not exit within 20s of SIGTERM")
	}
}

// TestServerSIGTERMLetsStreamsFinish: SIGTERM drains the server: a
// stream open at the signal finishes whole, a new stream is refused with
// a reason, and the server exits as soon as the stream is done, long
// before its --shutdown-timeout.
func TestServerSIGTERMLetsStreamsFinish(t *testing.T) {
	const timeout = 30 * time.Second
	srv := startServer(t, serverOpts{Target: testutil.EchoServer(t).Addr, Args: []string{"--shutdown-timeout", timeout.String()}})
	ctx := testContext(t, 2*time.Minute)
	sess, c := echoStream(ctx, t, srv.URL)

	type exit struct {
		code int
		took time.Duration
	}
	exited := make(chan exit, 1)
	go func() {
		code, took := srv.Terminate()
		exited <- exit{code, took}
	}()
	waitFor(t, 10*time.Second, "the server to start draining", func() (bool, string) {
		return srv.Count(`msg="shutting down;`) == 1, srv.Log()
	})
	if c2, err := sess.OpenStream(ctx, ""); err == nil {
		_ = c2.Close()
		t.Error("a new stream was accepted while the server drained")
	} else if !strings.Contains(err.Error(), "server is shutting down") {
		t.Errorf("new stream while draining: %v, want the server's reason", err)
	}

	payload := bytes.Repeat([]byte("drain"), 200<<10) // 1 MB
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		wrote <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("the open stream echoed %d of %d bytes, then %v", len(got), len(payload), err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	e := <-exited
	if e.code != 0 || e.took > timeout/2 {
		t.Errorf("server exited %d after %v; want 0, as soon as the stream was done\n%s", e.code, e.took, srv.Log())
	}
}

// echoStream dials a session to url and opens a stream to the server's
// echo target, proven up by one round trip; both close when the test ends.
func echoStream(ctx context.Context, t *testing.T, url string) (*client.Session, net.Conn) {
	t.Helper()
	sess, err := client.Dial(ctx, hardClient(url))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	c, err := sess.OpenStream(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	hello := make([]byte, 5)
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, hello); err != nil {
		t.Fatal(err)
	}
	return sess, c
}

// TestStreamCutDuringDrainResumes: a stream whose WebSocket is cut while
// the server drains resumes on a new one and finishes: the listener
// stays open for resumes until the drain is over.
func TestStreamCutDuringDrainResumes(t *testing.T) {
	const timeout = 20 * time.Second
	srv := startServer(t, serverOpts{Target: testutil.EchoServer(t).Addr, Args: []string{"--shutdown-timeout", timeout.String()}})
	path, err := netem.Start(netem.Config{Target: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	defer path.Close()
	ctx := testContext(t, 2*time.Minute)
	_, c := echoStream(ctx, t, "ws://"+path.Addr())
	exited := make(chan int, 1)
	go func() {
		code, _ := srv.Terminate()
		exited <- code
	}()
	waitFor(t, 10*time.Second, "the server to start draining", func() (bool, string) {
		return srv.Count(`msg="shutting down;`) == 1, srv.Log()
	})
	if n := path.Cut(); n < 1 {
		t.Fatalf("cut %d connections, want the session's", n)
	}
	payload := bytes.Repeat([]byte("resume"), 1000)
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout / 2))
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("a stream cut during the drain did not resume: %v\n%s", err, srv.Log())
	}
	// The stream ends, so the drain does, long before its timeout.
	_ = c.Close()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("server exited %d, want 0", code)
		}
	case <-time.After(timeout / 2):
		t.Fatalf("server still draining with no stream open\n%s", srv.Log())
	}
}

// TestAgentNeverLogsToken: an in-process agent with debug logging serves
// opens with a token (good, wrong, and through a resume after a cut) and
// never writes the token to its log or its status.
func TestAgentNeverLogsToken(t *testing.T) {
	const token = "s3cr3t-TOKEN"
	_, url := inProcessServer(t, func(c *server.Config) { c.Token = token })
	path, err := netem.Start(netem.Config{Target: strings.TrimPrefix(url, "ws://")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = path.Close() })

	parent, err := os.MkdirTemp("", "smxh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(parent) })
	dir := filepath.Join(parent, "a")
	var logs testutil.Buffer
	cfg := agent.DefaultConfig(dir)
	cfg.Persist = 0
	cfg.Mux.KeepAliveInterval = time.Second
	cfg.Backoff = client.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond, StableAfter: time.Second}
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(actx) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("agent Serve: %v", err)
		}
	})
	noStart := func() error { return errors.New("the test runs its agent itself") }
	ctx := testContext(t, time.Minute)
	open := func(req agent.OpenRequest) (net.Conn, error) {
		req.Host, req.ConnectTimeout = "sandbox", 5*time.Second
		return agent.Open(ctx, dir, noStart, req)
	}
	roundTrip := func(c net.Conn, msg string) {
		t.Helper()
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
			t.Fatalf("echo %q, %v", got, err)
		}
	}
	waitFor(t, 10*time.Second, "the agent's socket", func() (bool, string) {
		_, err := os.Stat(agent.SocketPath(dir))
		return err == nil, fmt.Sprint(err)
	})

	c, err := open(agent.OpenRequest{URL: "ws://" + path.Addr(), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(c, "before the cut")
	path.Cut()
	roundTrip(c, "after the cut")
	_ = c.Close()

	c2, err := open(agent.OpenRequest{URL: url, Header: map[string][]string{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(c2, "token in a header")
	_ = c2.Close()
	for _, req := range []agent.OpenRequest{
		{URL: url, Token: "wrong-" + token},
		{URL: url, Token: token, Target: "10.0.0.1:5432"},
		{URL: url + "/?token=" + token},
	} {
		c, err := open(req)
		if err == nil {
			// Streams are opened early: a refused target is the first
			// read's error.
			_, err = io.ReadAll(c)
			_ = c.Close()
		}
		if err == nil {
			t.Fatalf("open %+v succeeded", req)
		} else if strings.Contains(err.Error(), token) {
			t.Errorf("the error a proxy prints holds the token: %v", err)
		}
	}
	st, err := agent.GetStatus(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprintf("%+v", st); strings.Contains(s, token) {
		t.Errorf("the agent's status holds the token: %s", s)
	}
	if !strings.Contains(logs.String(), "session resumed") {
		t.Errorf("the agent never logged a resume: the test did not take that path\n%s", logs.String())
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the agent logged the token:\n%s", logs.String())
	}
	t.Logf("%d agent log lines, none with the token", strings.Count(logs.String(), "\n"))
}

// fdReport describes this process's open sockets by TCP state and ports,
// for a leak's failure message.
func fdReport() string {
	states := map[string]string{}
	for _, f := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) > 9 {
				states[fs[9]] = fs[1] + "->" + fs[2] + " st=" + fs[3]
			}
		}
	}
	count := map[string]int{}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if strings.HasPrefix(l, "socket:[") {
			ino := strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")
			if st, ok := states[ino]; ok {
				l = st[strings.Index(st, " "):] + " local " + st[:strings.Index(st, "->")]
			} else {
				l = "socket (not tcp)"
			}
		}
		count[l]++
	}
	var out []string
	for k, v := range count {
		if v > 2 {
			out = append(out, fmt.Sprintf("%d× %s", v, k))
		}
	}
	return strings.Join(out, "; ")
}

// TestIdleHTTPConnectionsClosed: plain HTTP connections that go quiet
// (after a health check, or part way into a request line) are closed
// within about --header-timeout, so idle sockets cannot pile up outside
// the session limit.
func TestIdleHTTPConnectionsClosed(t *testing.T) {
	srv := startServer(t, serverOpts{Target: testutil.EchoServer(t).Addr, Args: []string{"--header-timeout", "1s"}})
	for _, tc := range []struct{ name, send string }{
		{"idle after a health check", "GET /healthz HTTP/1.1\r\nHost: sandbox\r\n\r\n"},
		{"health check then three bytes", "GET /healthz HTTP/1.1\r\nHost: sandbox\r\n\r\nGET"},
		{"half a request line", "GET /heal"},
		{"nothing at all", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", srv.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tc.send); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_ = c.SetReadDeadline(start.Add(15 * time.Second))
			_, err = io.Copy(io.Discard, c) // the response, if any, then EOF
			took := time.Since(start)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server kept a quiet HTTP connection open for %v", took.Round(time.Millisecond))
			}
			t.Logf("closed after %v (%v)", took.Round(time.Millisecond), err)
			if took > 5*time.Second {
				t.Errorf("a quiet HTTP connection was closed after %v, want about the 1s --header-timeout", took)
			}
		})
	}
}
