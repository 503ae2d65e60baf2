//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/internal/procstat"
	"github.com/sandmux/sandmux/internal/sshtest"
	"github.com/sandmux/sandmux/internal/testutil"
)

const (
	// startTimeout bounds a server coming up; generous for loaded CI.
	startTimeout = 20 * time.Second
)

// sshPrograms are the OpenSSH programs every tunnel test needs.
var sshPrograms = []string{"sshd", "ssh-keygen", "ssh"}

// waitFor polls cond until it reports true or timeout passes, then fails
// the test with desc and cond's last explanation.
func waitFor(t testing.TB, timeout time.Duration, desc string, cond func() (bool, string)) {
	t.Helper()
	if ok, why := pollUntil(timeout, cond); !ok {
		t.Fatalf("timed out after %v waiting for %s (last: %s)", timeout, desc, why)
	}
}

// pollUntil polls cond until it is true or timeout passes, and returns
// cond's last explanation with the verdict.
func pollUntil(timeout time.Duration, cond func() (bool, string)) (bool, string) {
	var why string
	ok := testutil.Poll(timeout, func() bool {
		var ok bool
		ok, why = cond()
		return ok
	})
	return ok, why
}

// childEnv is the environment for the processes under test: the test's own
// minus any SANDMUX_* a developer may have set, plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		// Nor a proxy of the machine's: a test names the one it wants.
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(kv, "SANDMUX_") || slices.Contains(proxyVars, strings.ToUpper(name)) {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// proxyVars are the environment's HTTP proxy settings (in either case).
var proxyVars = []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"}

// procAttr stops a process under test if the test binary dies without
// running its cleanups (a -timeout panic), like sshtest does for sshd.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// result is what a finished command left behind.
type result struct {
	stdout, stderr string
	err            error
	dur            time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("err=%v after %v\nstdout: %q\nstderr: %q", r.err, r.dur.Round(time.Millisecond), r.stdout, r.stderr)
}

// exitCode is the process's exit status, -1 if it did not exit normally
// and 0 on success.
func (r result) exitCode() int {
	var ee *exec.ExitError
	if errors.As(r.err, &ee) {
		return ee.ExitCode()
	}
	if r.err != nil {
		return -1
	}
	return 0
}

// runAsync runs cmd (see run) in the background; done closes when it has
// ended and its result is ready.
func runAsync(cmd *exec.Cmd) (<-chan result, <-chan struct{}) {
	res := make(chan result, 1)
	done := make(chan struct{})
	go func() {
		res <- run(cmd, "")
		close(done)
	}()
	return res, done
}

// run runs cmd with stdin and captures both outputs.
//
// stdout is read to its end by run itself, not by exec's copier: the
// WaitDelay the commands carry (for a ProxyCommand that keeps ssh's stderr
// open) closes every output pipe that long after the program exits, and a
// copier that had not yet been given a CPU for the last bytes lost them,
// silently when the exit status was not 0 (TestEmbeddedStdioSeparate got
// 8 MiB of its 8 MiB + 3 on one loaded CPU, exit status and stderr right).
// Only the program holds its stdout, so its end comes when it exits.
func run(cmd *exec.Cmd, stdin string) result {
	var out, errb bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stderr = &errb
	pr, pw, err := os.Pipe()
	if err != nil {
		return result{err: err}
	}
	cmd.Stdout = pw
	start := time.Now()
	if err := cmd.Start(); err != nil {
		_, _ = pr.Close(), pw.Close()
		return result{err: err}
	}
	_ = pw.Close()
	read := make(chan struct{})
	go func() {
		defer close(read)
		_, _ = out.ReadFrom(pr)
	}()
	err = cmd.Wait()
	guard := time.NewTimer(stdoutAfterExit)
	defer guard.Stop()
	select {
	case <-read:
	case <-guard.C:
		// Held open by something the program started: a test bug,
		// told rather than hung on.
		err = errors.Join(err, fmt.Errorf("stdout still open %s after the program exited", stdoutAfterExit))
	}
	_ = pr.Close()
	<-read
	return result{stdout: out.String(), stderr: errb.String(), err: err, dur: time.Since(start)}
}

// stdoutAfterExit bounds run's wait for the end of a program's stdout
// once it has exited: only a hang guard.
const stdoutAfterExit = 2 * time.Minute

// sandmux returns an exec.Cmd for the binary under test with a clean
// environment plus env.
func sandmux(ctx context.Context, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, sandmuxBin, args...)
	cmd.Env = childEnv(env...)
	cmd.SysProcAttr = procAttr()
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// proxyCommand renders an ssh ProxyCommand for `sandmux proxy`. With an
// empty agentDir it runs --no-agent.
func proxyCommand(url, agentDir string, extra ...string) string {
	args := []string{sandmuxBin, "proxy", "--url", url}
	if agentDir == "" {
		args = append(args, "--no-agent")
	} else {
		args = append(args, "--agent-dir", agentDir)
	}
	args = append(args, extra...)
	return strings.Join(append(args, "%h"), " ")
}

// ssh runs a real ssh command through proxy and returns its result.
func ssh(ctx context.Context, t testing.TB, sshd *sshtest.Server, proxy string, env []string, args ...string) result {
	t.Helper()
	cmd := sshd.Command(ctx, t, "ssh", proxy, append([]string{"sandbox"}, args...)...)
	cmd.Env = childEnv(env...)
	return run(cmd, "")
}

// sshEcho runs `ssh sandbox echo word` through proxy and fails the test
// unless it prints word.
func sshEcho(ctx context.Context, t testing.TB, sshd *sshtest.Server, proxy string, env []string, word string) result {
	t.Helper()
	r := ssh(ctx, t, sshd, proxy, env, "echo", word)
	if r.err != nil || r.stdout != word+"\n" {
		t.Fatalf("ssh sandbox echo %s through %q: want %q\n%s", word, proxy, word+"\n", r)
	}
	return r
}

// sandmuxServer is one `sandmux server` process. Its log (stderr) is kept
// in a file across restarts, so tests can count what it logged.
type sandmuxServer struct {
	t       testing.TB
	Port    int
	Addr    string // "127.0.0.1:PORT" ("[::1]:PORT" with serverOpts.Host ::1)
	URL     string // "ws://" + Addr
	Metrics string // --metrics-listen's address, with serverOpts.Metrics
	host    string
	args    []string
	env     []string
	logPath string

	cmd    *exec.Cmd
	exited chan struct{}
	state  *os.ProcessState // set before exited is closed
	ended  bool             // already stopped or killed by the test
}

type serverOpts struct {
	Target   string   // --target; "" keeps the default
	Allow    []string // --allow
	Token    string   // --token
	Port     int      // 0 picks a free port
	Host     string   // the address to listen on; "" is 127.0.0.1
	LogLevel string   // "" means info
	Args     []string // more flags, e.g. --resume-grace 2s
	Env      []string // more environment, e.g. SANDMUX_KEEPALIVE=1s
	// Metrics serves --metrics-listen on a free loopback port, probed
	// again with each attempt as the public one is (sandmuxServer.Metrics).
	Metrics bool
}

// errPortTaken marks a start that lost the race for a probed free port.
var errPortTaken = errors.New("listen port taken")

// startServer starts `sandmux server` on 127.0.0.1 and returns once
// /healthz answers. It is stopped (SIGTERM) when the test ends.
func startServer(t testing.TB, o serverOpts) *sandmuxServer {
	t.Helper()
	s := &sandmuxServer{t: t, host: o.Host, logPath: filepath.Join(t.TempDir(), "server.log")}
	if s.host == "" {
		s.host = "127.0.0.1"
	}
	level := o.LogLevel
	if level == "" {
		level = "info"
	}
	s.args = []string{"--log-level", level}
	if o.Target != "" {
		s.args = append(s.args, "--target", o.Target)
	}
	for _, a := range o.Allow {
		s.args = append(s.args, "--allow", a)
	}
	if o.Token != "" {
		s.args = append(s.args, "--token", o.Token)
	}
	s.args = append(s.args, o.Args...)
	s.env = o.Env
	for attempt := 1; ; attempt++ {
		port := o.Port
		if port == 0 {
			// Free on 127.0.0.1 is a guess for ::1 as well; a port
			// taken there is retried like a lost race.
			port = testutil.FreePort(t)
		}
		if o.Metrics {
			s.Metrics = testutil.FreeAddr(t)
		}
		err := s.launch(port)
		if err == nil {
			break
		}
		if errors.Is(err, errPortTaken) && o.Port == 0 && attempt < 5 {
			continue
		}
		t.Fatalf("starting sandmux server: %v\n--- server log ---\n%s", err, s.Log())
	}
	t.Cleanup(func() {
		if s.ended {
			return
		}
		select {
		case <-s.exited:
			t.Errorf("sandmux server on %s exited before the test ended: %v\n--- server log ---\n%s", s.Addr, s.state, s.Log())
			return
		default:
		}
		if code, _ := s.Terminate(); code != 0 {
			t.Errorf("sandmux server exited %d on SIGTERM\n--- server log ---\n%s", code, s.Log())
		}
		if t.Failed() {
			t.Logf("--- sandmux server log (%s) ---\n%s", s.Addr, s.Log())
		}
	})
	return s
}

// launch starts the process on port and waits until /healthz says ok.
func (s *sandmuxServer) launch(port int) error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// Where this attempt's lines start: an earlier attempt's must not
	// read as this one's.
	var from int64
	if fi, err := logf.Stat(); err == nil {
		from = fi.Size()
	}
	addr := net.JoinHostPort(s.host, strconv.Itoa(port))
	args := append([]string{"server", "--listen", addr}, s.args...)
	if s.Metrics != "" {
		args = append(args, "--metrics-listen", s.Metrics)
	}
	cmd := exec.Command(sandmuxBin, args...)
	cmd.Env = childEnv(s.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr()
	err = cmd.Start()
	_ = logf.Close()
	if err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		s.state = cmd.ProcessState
		close(exited)
	}()
	s.cmd, s.exited, s.ended = cmd, exited, false
	s.Port, s.Addr, s.URL = port, addr, "ws://"+addr

	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			s.ended = true
			// A probed port (--listen's, --metrics-listen's) another
			// process took meanwhile: the server's own line, or the
			// system's words where it has none.
			if l := s.Log(); int64(len(l)) >= from && (strings.Contains(l[from:], " is in use: ") || strings.Contains(l[from:], "address already in use")) {
				return fmt.Errorf("%w: %s", errPortTaken, addr)
			}
			return fmt.Errorf("server exited before it was ready: %v", s.state)
		default:
		}
		if healthy(hc, "http://"+addr+"/healthz") {
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			s.ended = true
			return fmt.Errorf("server on %s not healthy after %v", addr, startTimeout)
		}
		select {
		case <-exited:
		case <-time.After(testutil.PollEvery):
		}
	}
}

func healthy(hc *http.Client, url string) bool {
	resp, err := hc.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK && strings.TrimSpace(string(b)) == "ok"
}

// Terminate sends SIGTERM and waits up to 10 s (then SIGKILL). It returns
// the exit code (-1 when killed by a signal) and how long the exit took.
func (s *sandmuxServer) Terminate() (int, time.Duration) {
	return s.Stop(syscall.SIGTERM)
}

// Stop is Terminate with another signal.
func (s *sandmuxServer) Stop(sig syscall.Signal) (int, time.Duration) {
	start := time.Now()
	s.ended = true
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	return s.state.ExitCode(), time.Since(start)
}

// Kill ends the server with SIGKILL, like a crash or an OOM kill.
func (s *sandmuxServer) Kill() {
	s.ended = true
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// Restart starts the server again on the same port after Kill or
// Terminate.
func (s *sandmuxServer) Restart() {
	s.t.Helper()
	if !s.ended {
		s.t.Fatalf("Restart of a server that is still running")
	}
	if err := s.launch(s.Port); err != nil {
		s.t.Fatalf("restarting sandmux server on %s: %v\n--- server log ---\n%s", s.Addr, err, s.Log())
	}
}

// Log returns everything the server logged so far (all its lives).
func (s *sandmuxServer) Log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read server log: %v)", err)
	}
	return string(b)
}

// Count counts log lines containing every one of subs.
func (s *sandmuxServer) Count(subs ...string) int {
	return testutil.CountLines(s.Log(), subs...)
}

// Log lines the tests count.
const (
	logSessionStarted = `msg="session started"`
	logModeSandmux    = "mode=sandmux"
	logModeRaw        = "mode=raw"
	logAgentStarted   = `msg="agent started"`
	logWrongToken     = `msg="refused upgrade: missing or wrong token"`
)

// newAgentDir returns a private directory for one test's agent. It is
// short because a Unix socket path must fit in 108 bytes (t.TempDir embeds
// the test name), and it does not exist yet so that the agent creates it.
// Cleanup stops whatever agent runs there and removes it.
func newAgentDir(t testing.TB) string {
	t.Helper()
	parent, err := os.MkdirTemp("", "smx")
	if err != nil {
		t.Fatalf("%v", err)
	}
	dir := filepath.Join(parent, "a")
	t.Cleanup(func() {
		stopAgent(t, dir)
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "agent.log")); err == nil {
				t.Logf("--- agent log (%s) ---\n%s", dir, b)
			}
		}
		_ = os.RemoveAll(parent)
	})
	return dir
}

// stopAgent runs `sandmux agent --stop` for dir and then makes sure every
// agent process of dir is gone, killing (by pid) any that stays.
func stopAgent(t testing.TB, dir string) {
	t.Helper()
	pids := agentPIDs(dir)
	if st, err := readStatus(dir); err == nil && st.Running {
		pids = appendUnique(pids, st.PID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if r := run(sandmux(ctx, nil, "agent", "--stop", "--agent-dir", dir), ""); r.err != nil {
		t.Errorf("sandmux agent --stop --agent-dir %s:\n%s", dir, r)
	}
	for _, pid := range pids {
		if ok, _ := pollUntil(5*time.Second, func() (bool, string) { return processGone(pid), "" }); ok {
			continue
		}
		t.Errorf("agent pid %d still runs 5s after `sandmux agent --stop`; killing it", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		pollUntil(5*time.Second, func() (bool, string) { return processGone(pid), "" })
	}
}

func appendUnique(s []int, v int) []int {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// agentPIDs finds the live agent processes serving dir by their command
// line (the agent is detached, so the test has no handle on it).
func agentPIDs(dir string) []int {
	return processes(func(pid int, args []string) bool {
		if args[0] != sandmuxBin || len(args) < 2 || args[1] != "agent" {
			return false
		}
		for i := 2; i+1 < len(args); i++ {
			if args[i] == "--agent-dir" && args[i+1] == dir {
				return !processGone(pid)
			}
		}
		return false
	})
}

// processes are the pids of the processes whose command line (its
// arguments, at least one) match accepts.
func processes(match func(pid int, args []string) bool) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		if match(pid, strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// processGone reports whether pid has exited. A zombie counts as gone:
// the detached agent is re-parented to an init that may never reap it.
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	st, err := procstat.Read(pid)
	return err != nil || st.Exited()
}

// fdCount counts pid's open file descriptors.
func fdCount(t testing.TB, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("counting fds of pid %d: %v", pid, err)
	}
	return len(ents)
}

// agentStatus is `sandmux status --json`.
type agentStatus struct {
	Running     bool            `json:"running"`
	PID         int             `json:"pid"`
	Socket      string          `json:"socket"`
	OpenStreams int             `json:"open_streams"`
	Sessions    []sessionStatus `json:"sessions"`
}

type sessionStatus struct {
	URL          string `json:"url"`
	Host         string `json:"host"`
	State        string `json:"state"`
	Reason       string `json:"reason"`
	Connects     int    `json:"connects"`
	Reconnects   int    `json:"reconnects"`
	DialErrors   int    `json:"dial_errors"`
	OpenStreams  int    `json:"open_streams"`
	StreamsTotal int64  `json:"streams_total"`
	BytesIn      int64  `json:"bytes_in"`
	BytesOut     int64  `json:"bytes_out"`
	Resumable    bool   `json:"resumable"`
	Resumes      int64  `json:"resumes"`
	Replayed     int64  `json:"bytes_replayed"`
	Unacked      int64  `json:"bytes_unacked"`
}

// readStatus runs `sandmux status --json` for dir.
func readStatus(dir string) (agentStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r := run(sandmux(ctx, nil, "status", "--json", "--agent-dir", dir), "")
	var st agentStatus
	if r.err != nil {
		return st, fmt.Errorf("sandmux status: %s", r)
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		return st, fmt.Errorf("parsing sandmux status --json %q: %w", r.stdout, err)
	}
	return st, nil
}

// status is readStatus that fails the test on error.
func status(t testing.TB, dir string) agentStatus {
	t.Helper()
	st, err := readStatus(dir)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return st
}

// onlySession returns the agent's single session.
func onlySession(t testing.TB, st agentStatus) sessionStatus {
	t.Helper()
	if len(st.Sessions) != 1 {
		t.Fatalf("agent has %d sessions, want 1: %+v", len(st.Sessions), st)
	}
	return st.Sessions[0]
}

// agentLog returns dir's agent.log.
func agentLog(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
	return string(b)
}

// firstLogTime returns the time= of the first line of log (slog's text
// format) that contains sub and was logged at or after since.
func firstLogTime(log, sub string, since time.Time) (time.Time, bool) {
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, sub) {
			continue
		}
		f, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		at, err := time.Parse(time.RFC3339Nano, f)
		// slog writes milliseconds: a line from since's own millisecond
		// may read up to 1 ms earlier.
		if err == nil && !at.Before(since.Truncate(time.Millisecond)) {
			return at, true
		}
	}
	return time.Time{}, false
}

// rawBridge is a plain WebSocket-to-TCP bridge like `websocat -b
// ws-l:... tcp:...`: it picks no subprotocol and splices each WebSocket's
// binary messages to target.
type rawBridge struct {
	URL      string
	Accepted atomic.Int64
}

func startRawBridge(t testing.TB, target string) *rawBridge {
	t.Helper()
	b := &rawBridge{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		b.Accepted.Add(1)
		// The connection's life is the bridge's, never r.Context().
		nc := websocket.NetConn(ctx, ws, websocket.MessageBinary)
		tc, err := net.Dial("tcp", target)
		if err != nil {
			_ = nc.Close()
			return
		}
		done := make(chan struct{}, 2)
		go func() { _, _ = io.Copy(tc, nc); done <- struct{}{} }()
		go func() { _, _ = io.Copy(nc, tc); done <- struct{}{} }()
		// A WebSocket cannot half-close: either end ends both.
		<-done
		_ = nc.Close()
		_ = tc.Close()
		<-done
	}))
	b.URL = "ws" + strings.TrimPrefix(hs.URL, "http")
	t.Cleanup(func() {
		cancel()
		hs.Close()
		wg.Wait()
	})
	return b
}

// startSSHD starts a throwaway sshd, after checking for the programs
// (failing under CI=true, skipping locally when absent).
//
// Sessions get SHLVL set: bash sources ~/.bashrc for `ssh host cmd` only
// when it runs at shell level 1 under sshd, and a heavy ~/.bashrc (pyenv
// init costs root about 1 CPU-second here) would otherwise dominate every
// ssh in these tests and starve the tunnel under test on small machines.
func startSSHD(t testing.TB, programs ...string) *sshtest.Server {
	t.Helper()
	sshtest.Require(t, append(append([]string{}, sshPrograms...), programs...)...)
	return sshtest.StartWith(t, sshtest.Options{ExtraConfig: "SetEnv SHLVL=1"})
}

// testContext bounds a whole test; commands started with it are killed
// when it ends.
func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFile polls path until it contains sub.
func waitFile(t testing.TB, path, sub string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%q in %s", sub, filepath.Base(path)), func() (bool, string) {
		b, _ := os.ReadFile(path)
		return strings.Contains(string(b), sub), string(b)
	})
}
