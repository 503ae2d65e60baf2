//go:build linux

package e2e

// Issue 5: resumable sessions. A lost WebSocket no longer ends the
// streams on it: the agent (or a --no-agent proxy) redials and the
// session's byte stream continues where the peer stopped receiving it.
// Unless a test says otherwise, the proxy runs in agent mode and a fault
// proxy (internal/netem) sits between the agent and `sandmux server`, with
// a 1 s keepalive on both ends so that silent paths are noticed fast.
//
// Tests whose assertions are about time (freezes, grace periods, SIGSTOP)
// are not parallel, as in agent_test.go; the bulk transfers are.
//
// A resume presenting the wrong secret cannot be produced through the
// command line (the secret never leaves the client's memory); it is
// covered by server/resume_errors_test.go.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/netem"
	"github.com/sandmux/sandmux/internal/sshtest"
)

// fastKeepalive is the keepalive of every process in these tests.
const fastKeepalive = "SANDMUX_KEEPALIVE=1s"

// Log lines and stderr lines the resume tests look for.
const (
	logSessionEnded   = `msg="session ended"`
	logSessionResumed = `msg="session resumed"`
	logTransportLost  = `msg="transport lost; waiting to resume"`
	unknownSession    = "the server no longer knows this session (it restarted, or the grace period ran out)"
	// unknownLine is the line of a stream whose session the server no
	// longer knows.
	unknownLine = "sandmux: session to sandbox could not be resumed: " + unknownSession + "; run the command again for a fresh session"
)

// resumeRig is sshd, `sandmux server` and a fault proxy in front of it,
// with the ProxyCommand that reaches the server through the fault proxy.
type resumeRig struct {
	sshd  *sshtest.Server
	srv   *sandmuxServer
	path  *netem.Proxy
	dir   string // the agent's directory; "" with --no-agent
	proxy string // ssh's ProxyCommand
	env   []string
}

type rigOpts struct {
	sshd       *sshtest.Server // nil starts one
	programs   []string        // OpenSSH programs needed beyond ssh
	serverArgs []string        // e.g. --resume-grace 2s
	metrics    bool            // serverOpts.Metrics
	env        []string        // more environment for the ssh side
	noAgent    bool
	inFlight   int // the fault proxy's MaxInFlight; 0 is netem's default
}

func newResumeRig(t *testing.T, o rigOpts) *resumeRig {
	t.Helper()
	rg := &resumeRig{sshd: o.sshd, env: append([]string{fastKeepalive}, o.env...)}
	if rg.sshd == nil {
		rg.sshd = startSSHD(t, o.programs...)
	}
	rg.srv = startServer(t, serverOpts{Target: rg.sshd.Addr, Args: o.serverArgs, Env: []string{fastKeepalive}, Metrics: o.metrics})
	var err error
	rg.path, err = netem.Start(netem.Config{Target: rg.srv.Addr, MaxInFlight: o.inFlight})
	if err != nil {
		t.Fatal(err)
	}
	// Registered after the server's cleanup, so it runs first: a frozen
	// path must not hold the server's SIGTERM up.
	t.Cleanup(func() {
		rg.path.Thaw()
		_ = rg.path.Close()
	})
	if !o.noAgent {
		rg.dir = newAgentDir(t)
	}
	rg.proxy = proxyCommand("ws://"+rg.path.Addr(), rg.dir)
	return rg
}

// command builds an OpenSSH client command through the rig.
func (rg *resumeRig) command(ctx context.Context, t *testing.T, program string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := rg.sshd.Command(ctx, t, program, rg.proxy, args...)
	cmd.Env = childEnv(rg.env...)
	return cmd
}

// session is the agent's only session.
func (rg *resumeRig) session(t *testing.T) sessionStatus {
	t.Helper()
	return onlySession(t, status(t, rg.dir))
}

// cut resets the path (every WebSocket on it) and fails the test unless
// there was one to reset.
func (rg *resumeRig) cut(t *testing.T) {
	t.Helper()
	if n := rg.path.Cut(); n < 1 {
		t.Fatalf("netem cut %d connections, want at least the session's WebSocket", n)
	}
}

// awaitResumed waits until the server has logged n resumptions in all.
// The server's log is a file, so this costs the machine nothing, unlike
// polling `sandmux status` during a transfer.
func (rg *resumeRig) awaitResumed(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("the server to log resumption #%d", n), func() (bool, string) {
		got := rg.srv.Count(logSessionResumed)
		return got >= n, fmt.Sprintf("%d resumptions logged", got)
	})
}

// cutPoint is where cutAt cuts the path: once the path has carried at
// bytes since cutAt began, a little more than the transfer's own bytes
// (ssh's and the tunnel's framing, acknowledgements, replays), so the
// transfer itself has not reached at yet. The path freezes at that
// byte, so the transfer waits there for the cut, on any machine, rather
// than racing a watcher that might see it only at its end. With
// inFlight (agent mode), only the way to the server is frozen, with the
// server's acknowledgements still coming back, and a new ssh is started
// through the agent; the cut waits until the path holds bytes the agent
// sent into the frozen way. Those never reach the server, so the resume
// must replay them, whatever the transfer's own flow control allowed.
type cutPoint struct {
	at       int64
	inFlight bool
}

// cutAt cuts the path at each point in turn, waiting after each cut for
// the session to be resumed before the next. done closes when the
// transfer ends; reaching it first fails the test. Call it as the
// transfer starts: the points count from the bytes carried then, and
// are all armed at once, so that the transfer stops at the next point
// even while the last cut is still being dealt with.
func (rg *resumeRig) cutAt(t *testing.T, done <-chan struct{}, files []string, points ...cutPoint) {
	t.Helper()
	base := rg.path.Carried()
	var both, toTarget []int64
	for _, p := range points {
		if p.inFlight {
			toTarget = append(toTarget, base+p.at)
		} else {
			both = append(both, base+p.at)
		}
	}
	freezes, holds := rg.path.FreezesAt(), rg.path.FreezesToTargetAt()
	rg.path.FreezeAt(both...)
	rg.path.FreezeToTargetAt(toTarget...)
	type inFlightSSH struct {
		cut int
		res <-chan result
	}
	var opened []inFlightSSH
	for i, p := range points {
		fired, want := rg.path.FreezesAt, &freezes
		if p.inFlight {
			fired, want = rg.path.FreezesToTargetAt, &holds
		}
		*want++
		ok, why := pollUntil(2*time.Minute, func() (bool, string) {
			select {
			case <-done:
				return true, "transfer ended"
			default:
			}
			return fired() >= *want, fmt.Sprintf("%d bytes carried, %d in the files", rg.path.Carried()-base, totalSize(files))
		})
		select {
		case <-done:
			t.Fatalf("the transfer ended before cut %d (at %d MiB) could be made", i+1, p.at>>20)
		default:
		}
		if !ok {
			t.Fatalf("transfer did not reach %d MiB for cut %d (last: %s)", p.at>>20, i+1, why)
		}
		resumed := rg.srv.Count(logSessionResumed)
		if p.inFlight {
			res, _ := runAsync(rg.command(testContext(t, 2*time.Minute), t, "ssh", "sandbox", "echo", "opened-in-flight"))
			opened = append(opened, inFlightSSH{i + 1, res})
			// Unacknowledged bytes are not enough: at its in-flight limit
			// the agent may have nothing on the path but acknowledgements
			// on their way back. Held bytes never reach the server: those
			// queued when the freeze came, and what the agent, still
			// acknowledged, sends after it. The ssh opened now waits in the
			// agent, or went into the dying path; either way it must
			// complete after the resume. Acknowledgements, which are not
			// replayed, are messages of 15 bytes, at most a few a second
			// on an upload, so this much held is data.
			const dataHeld = 4 << 10
			waitFor(t, 10*time.Second, "data held on the way to the server", func() (bool, string) {
				n := rg.path.HeldToTarget()
				return n >= dataHeld, fmt.Sprintf("%d bytes held", n)
			})
			t.Logf("%d bytes held on the way to the server", rg.path.HeldToTarget())
		}
		rg.cut(t)
		rg.path.Thaw()
		t.Logf("cut %d at %d MiB (bytes in flight forced: %v)", i+1, totalSize(files)>>20, p.inFlight)
		rg.awaitResumed(t, resumed+1, 30*time.Second)
	}
	// Checked once every cut is made: the next point's freeze may hold
	// these up until its cut.
	for _, o := range opened {
		// The stream opened into the dying path completes after the resume.
		if r := <-o.res; r.err != nil || r.stdout != "opened-in-flight\n" {
			t.Errorf("ssh started while the path was frozen, before cut %d:\n%s", o.cut, r)
		}
	}
}

// totalSize sums the sizes of the files that exist.
func totalSize(files []string) int64 {
	var n int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// Signal sends sig to the running server (SIGSTOP, SIGCONT).
func (s *sandmuxServer) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to sandmux server: %v", sig, err)
	}
}

// sandmuxLines returns the lines of stderr written by sandmux itself.
func sandmuxLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "sandmux: ") {
			out = append(out, l)
		}
	}
	return out
}

// waitProxyLine waits for the proxy's one line on ssh's stderr (it may
// come just after ssh exits) and checks it with match.
func waitProxyLine(t *testing.T, b *bgSSH, desc string, match func(string) bool) {
	t.Helper()
	ok, _ := pollUntil(5*time.Second, func() (bool, string) { return len(sandmuxLines(b.stderr())) > 0, "" })
	lines := sandmuxLines(b.stderr())
	if !ok || len(lines) != 1 || !match(lines[0]) {
		t.Errorf("ssh's stderr %q: want exactly one sandmux line, %s", b.stderr(), desc)
	}
}

// waitUnknownLine waits for b's one sandmux line to be unknownLine: its
// session was ended by the server, which no longer knows it.
func waitUnknownLine(t *testing.T, b *bgSSH) {
	t.Helper()
	waitProxyLine(t, b, fmt.Sprintf("%q", unknownLine), func(l string) bool { return l == unknownLine })
}

// checkFDs waits for the agent's descriptor count to return to before±3.
func checkFDs(t *testing.T, pid, before int) {
	t.Helper()
	var after int
	waitFor(t, 10*time.Second, fmt.Sprintf("the agent's fd count to return to %d±3", before), func() (bool, string) {
		after = fdCount(t, pid)
		return after >= before-3 && after <= before+3, fmt.Sprintf("%d fds", after)
	})
	t.Logf("agent fds: %d before, %d after", before, after)
}

// settledAfterFailure checks an agent whose session could not be resumed,
// with nobody waiting for it: it is left idle, not redialled, with the
// descriptors it had (fds, of pid); the next ssh dials a fresh one.
func settledAfterFailure(t *testing.T, rg *resumeRig, pid, fds int) {
	t.Helper()
	rg.settledIn(t, "idle")
	checkFDs(t, pid, fds)
	sshEcho(testContext(t, time.Minute), t, rg.sshd, rg.proxy, rg.env, "fresh")
	rg.settledAgent(t)
	checkFDs(t, pid, fds)
	if s := rg.session(t); s.Reconnects != 1 {
		t.Errorf("session %+v: want one reconnect, the fresh ssh's", s)
	}
}

// settledAgent waits for the agent to hold a connected session with no
// stream and returns its pid and fd count.
func (rg *resumeRig) settledAgent(t *testing.T) (pid, fds int) {
	t.Helper()
	return rg.settledIn(t, "connected")
}

// settledIn waits for the agent's one session to be in state, with no
// stream, and returns the agent's pid and fd count.
func (rg *resumeRig) settledIn(t *testing.T, state string) (pid, fds int) {
	t.Helper()
	var st agentStatus
	waitFor(t, 20*time.Second, "an agent session "+state+" with no streams", func() (bool, string) {
		var err error
		st, err = readStatus(rg.dir)
		if err != nil {
			return false, err.Error()
		}
		return st.OpenStreams == 0 && len(st.Sessions) == 1 && st.Sessions[0].State == state, fmt.Sprintf("%+v", st)
	})
	return st.PID, fdCount(t, st.PID)
}

// TestResumeSCP256MiBCuts: a 256 MiB scp upload through real sshd
// survives three resets of the WebSocket spread over the transfer, and the
// download back survives one more; both are byte-exact.
func TestResumeSCP256MiBCuts(t *testing.T) {
	t.Parallel()
	rg := newResumeRig(t, rigOpts{programs: []string{"scp"}})
	ctx := testContext(t, 4*time.Minute)
	const size = 256 << 20

	local := t.TempDir()
	src := filepath.Join(local, "up.bin")
	want := sshtest.RandomFile(t, src, size)
	remote := filepath.Join(rg.sshd.Dir, "remote.bin")
	back := filepath.Join(local, "back.bin")

	res, done := runAsync(rg.command(ctx, t, "scp", "-q", src, "sandbox:"+remote))
	// The middle cut surely has bytes in flight, so that some must be
	// replayed.
	rg.cutAt(t, done, []string{remote}, cutPoint{at: size / 4}, cutPoint{at: size / 2, inFlight: true}, cutPoint{at: size * 3 / 4})
	if r := <-res; r.err != nil {
		t.Fatalf("scp upload across 3 cuts: %s", r)
	} else {
		t.Logf("scp upload of 256 MiB across 3 cuts took %v", r.dur.Round(time.Millisecond))
	}
	if got := sshtest.FileSHA256(t, remote); got != want {
		t.Fatalf("uploaded file sha256 %s, want %s", got, want)
	}
	s := rg.session(t)
	if !s.Resumable || s.Resumes < 3 || s.Replayed <= 0 || s.Reconnects != 0 {
		t.Errorf("after the upload: %+v; want resumable, resumes >= 3, bytes_replayed > 0, reconnects 0", s)
	}
	t.Logf("after the upload: resumes %d, bytes_replayed %d", s.Resumes, s.Replayed)

	res, done = runAsync(rg.command(ctx, t, "scp", "-q", "sandbox:"+remote, back))
	rg.cutAt(t, done, []string{back}, cutPoint{at: size / 2})
	if r := <-res; r.err != nil {
		t.Fatalf("scp download across a cut: %s", r)
	} else {
		t.Logf("scp download of 256 MiB across 1 cut took %v", r.dur.Round(time.Millisecond))
	}
	if got := sshtest.FileSHA256(t, back); got != want {
		t.Fatalf("downloaded file sha256 %s, want %s", got, want)
	}
	s = rg.session(t)
	if s.Resumes < 4 || s.Connects != 1 {
		t.Errorf("after the download: %+v; want resumes >= 4 on 1 connect", s)
	}
	if n := rg.srv.Count(logSessionStarted, logModeSandmux); n != 1 {
		t.Errorf("server started %d sessions, want 1 (every cut resumed it)", n)
	}
}

// TestResumeInteractiveLines: lines typed into a remote read loop before,
// during and after a cut each come back exactly once, in order, and the
// ssh keeps running throughout.
func TestResumeInteractiveLines(t *testing.T) {
	t.Parallel()
	rg := newResumeRig(t, rigOpts{})
	ctx := testContext(t, 2*time.Minute)

	cmd := rg.command(ctx, t, "ssh", "sandbox", `while IFS= read -r l; do echo "got:$l"; done`)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errPath := filepath.Join(t.TempDir(), "ssh.err")
	errf, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	cmd.Stderr = errf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var wg sync.WaitGroup
	lines := make(chan string, 1024)
	wg.Go(func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	})
	// Wait may only run once the pipes are drained; the reader above ends
	// at ssh's EOF.
	go func() { wg.Wait(); exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	stderr := func() string { b, _ := os.ReadFile(errPath); return string(b) }

	expect := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			want := fmt.Sprintf("got:line-%d", i)
			select {
			case got, ok := <-lines:
				if !ok {
					t.Fatalf("ssh's output ended before %q; stderr %q", want, stderr())
				}
				if got != want {
					t.Fatalf("read %q, want %q (every line once, in order)", got, want)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("no %q within 30s; stderr %q", want, stderr())
			}
		}
	}
	send := func(from, to int) {
		t.Helper()
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, "line-%d\n", i)
		}
		if _, err := io.WriteString(stdin, b.String()); err != nil {
			t.Fatalf("writing lines %d..%d to ssh: %v", from, to-1, err)
		}
	}

	send(0, 1)
	expect(0, 1) // the loop runs: the stream is up end to end
	// Lines in flight when the WebSocket is reset, and lines typed while
	// the session is detached, all arrive.
	send(1, 200)
	rg.cut(t)
	send(200, 400)
	expect(1, 400)
	rg.awaitResumed(t, 1, 10*time.Second)
	send(400, 500)
	rg.cut(t)
	expect(400, 500)
	rg.awaitResumed(t, 2, 10*time.Second)
	select {
	case err := <-exited:
		exited <- err
		t.Fatalf("ssh exited (%v) although its session was resumed; stderr %q", err, stderr())
	default:
	}

	_ = stdin.Close() // the remote loop reads EOF and ends
	select {
	case got, ok := <-lines:
		if ok {
			t.Errorf("extra output %q after the last line", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("ssh did not end 20s after its input closed; stderr %q", stderr())
	}
	err = <-exited
	exited <- err
	if err != nil || stderr() != "" {
		t.Errorf("ssh ended with %v, stderr %q; want success and no output", err, stderr())
	}
	s := rg.session(t)
	if !s.Resumable || s.Resumes < 2 || s.Connects != 1 {
		t.Errorf("session %+v: want resumable with resumes >= 2 on 1 connect", s)
	}
}

// TestResumeSFTPParallel: 8 sftp processes at once, each putting and
// getting its own 16 MiB file, through one agent session that is cut
// twice.
func TestResumeSFTPParallel(t *testing.T) {
	t.Parallel()
	rg := newResumeRig(t, rigOpts{programs: []string{"sftp"}})
	ctx := testContext(t, 4*time.Minute)

	const n, size = 8, 16 << 20
	jobs := newSFTPJobs(t, n, size, t.TempDir(), rg.sshd.Dir)
	cmds := make([]*exec.Cmd, n)
	var files []string
	for i, j := range jobs {
		cmds[i] = rg.command(ctx, t, "sftp", "-b", j.batch, "sandbox")
		files = append(files, j.remote, j.back)
	}
	// Start the agent and its session first, so that the 8 proxies share
	// it rather than racing to start it while the cuts are made.
	sshEcho(ctx, t, rg.sshd, rg.proxy, rg.env, "warm")

	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() { j.res = run(cmds[i], "") })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	const total = 2 * n * size // every byte is put and then got
	rg.cutAt(t, done, files, cutPoint{at: total / 3}, cutPoint{at: total * 2 / 3})
	<-done
	checkSFTPJobs(t, jobs)
	if s := rg.session(t); s.Resumes < 2 || s.Connects != 1 {
		t.Errorf("session %+v: want resumes >= 2 on 1 connect", s)
	}
}

// TestResumeAfterFreeze: a path that goes silent without a reset (the
// fault proxy holds every byte, also those of the redial) for 3× the
// keepalive during an scp: the agent notices, its redial completes once
// the path thaws, and the scp finishes byte-exact.
func TestResumeAfterFreeze(t *testing.T) {
	rg := newResumeRig(t, rigOpts{programs: []string{"scp"}})
	ctx := testContext(t, 2*time.Minute)
	const size = 64 << 20

	local := t.TempDir()
	src := filepath.Join(local, "up.bin")
	want := sshtest.RandomFile(t, src, size)
	remote := filepath.Join(rg.sshd.Dir, "remote.bin")

	res, done := runAsync(rg.command(ctx, t, "scp", "-q", src, "sandbox:"+remote))
	waitFor(t, time.Minute, "the upload to reach 8 MiB", func() (bool, string) {
		select {
		case <-done:
			return true, ""
		default:
		}
		return totalSize([]string{remote}) >= 8<<20, ""
	})
	rg.path.Freeze()
	frozen := time.Now()
	waitFor(t, 8*time.Second, "the agent to notice the frozen path", func() (bool, string) {
		s := rg.session(t)
		return s.State == "resuming", fmt.Sprintf("%+v", s)
	})
	// Timed by the agent's own log line, not by when a status poll saw
	// the new state: under load one `sandmux status` can take a second,
	// and twice in CI that put the poll past the bound while the agent
	// had noticed in time.
	noticed, ok := firstLogTime(agentLog(rg.dir), logTransportLost, frozen)
	if !ok {
		t.Fatalf("no %q line after the freeze in the agent's log:\n%s", logTransportLost, agentLog(rg.dir))
	}
	detected := noticed.Sub(frozen)
	if remain := 3*time.Second - time.Since(frozen); remain > 0 {
		time.Sleep(remain) // the fault lasts 3× the keepalive
	}
	rg.path.Thaw()
	t.Logf("frozen path detected after %v, thawed after %v", detected.Round(time.Millisecond), time.Since(frozen).Round(time.Millisecond))
	if detected > 2500*time.Millisecond {
		t.Errorf("frozen path detected after %v, want within 2.5s of a 1s keepalive", detected)
	}

	if r := <-res; r.err != nil {
		t.Fatalf("scp across a frozen path: %s", r)
	}
	if got := sshtest.FileSHA256(t, remote); got != want {
		t.Fatalf("uploaded file sha256 %s, want %s", got, want)
	}
	if s := rg.session(t); s.Resumes < 1 || s.Connects != 1 || s.State != "connected" {
		t.Errorf("session %+v: want connected, resumes >= 1 on 1 connect", s)
	}
	if n := rg.srv.Count(logSessionResumed); n < 1 {
		t.Errorf("server logged %d resumptions, want >= 1", n)
	}
}

// TestResumeErrorLines: each way a session can fail to resume ends its
// streams with the one line a user sees, and leaves the agent with the
// descriptors it had. The cases wait mostly on the clock, each with its own
// server and agent, so they run side by side (still before the CPU-heavy
// parallel tests start).
func TestResumeErrorLines(t *testing.T) {
	sshd := startSSHD(t)

	sleeper := func(t *testing.T, rg *resumeRig) *bgSSH {
		t.Helper()
		ctx := testContext(t, time.Minute)
		return startBackgroundSSH(t, rg.command(ctx, t, "ssh", "sandbox", "echo ready; exec sleep 60"))
	}
	ended := func(t *testing.T, b *bgSSH) {
		t.Helper()
		select {
		case <-b.done:
		case <-time.After(15 * time.Second):
			t.Fatalf("ssh still running 15s after its session was lost; stderr %q", b.stderr())
		}
		if b.err == nil {
			t.Errorf("ssh exited 0 although its session could not be resumed; stderr %q", b.stderr())
		}
	}
	// warm starts the agent with a session and records its descriptors.
	warm := func(t *testing.T, rg *resumeRig) (pid, fds int) {
		t.Helper()
		sshEcho(testContext(t, time.Minute), t, sshd, rg.proxy, rg.env, "warm")
		return rg.settledAgent(t)
	}

	// The line of a stream whose agent gave up after its 2 s
	// --resume-timeout on a path that went silent, whether an attempt to
	// resume failed within the 2 s or not.
	timedOut := regexp.MustCompile(`^sandmux: session to sandbox could not be resumed within 2s(: | \(lost: )session stopped responding: nothing received for .*; run the command again once the sandbox answers \(` + "`sandmux doctor --url 'ws://[^' ]+' sandbox`" + ` checks it\)$`)

	t.Run("grace expired", func(t *testing.T) {
		t.Parallel()
		rg := newResumeRig(t, rigOpts{sshd: sshd, serverArgs: []string{"--resume-grace", "2s"}})
		pid, fds := warm(t, rg)
		bg := sleeper(t, rg)

		rg.path.Freeze()
		waitFor(t, 20*time.Second, "the server to end the detached session", func() (bool, string) {
			return rg.srv.Count(logSessionEnded) >= 1, rg.srv.Log()
		})
		if bg.exited() {
			t.Fatalf("ssh ended while the path was still frozen: %v; stderr %q", bg.err, bg.stderr())
		}
		rg.path.Thaw()
		ended(t, bg)
		waitUnknownLine(t, bg)

		settledAfterFailure(t, rg, pid, fds)
	})

	t.Run("server restarted", func(t *testing.T) {
		t.Parallel()
		rg := newResumeRig(t, rigOpts{sshd: sshd})
		pid, fds := warm(t, rg)
		bg := sleeper(t, rg)

		rg.srv.Kill()
		rg.srv.Restart()
		ended(t, bg)
		waitUnknownLine(t, bg)

		r := sshEcho(testContext(t, time.Minute), t, sshd, rg.proxy, rg.env, "fresh")
		t.Logf("a new ssh after the restart took %v", r.dur.Round(time.Millisecond))
		if s := rg.session(t); s.Reconnects < 1 || !s.Resumable {
			t.Errorf("session %+v: want a new resumable session (reconnects >= 1)", s)
		}
		rg.settledAgent(t)
		checkFDs(t, pid, fds)
	})

	t.Run("client resume-timeout", func(t *testing.T) {
		t.Parallel()
		// The agent gives up before the server does (10m): its own
		// --resume-timeout ends the streams, naming the lost path.
		rg := newResumeRig(t, rigOpts{sshd: sshd, env: []string{"SANDMUX_RESUME_TIMEOUT=2s"}})
		pid, fds := warm(t, rg)
		bg := sleeper(t, rg)

		rg.path.Freeze()
		ended(t, bg)
		waitProxyLine(t, bg, "matching "+timedOut.String(), timedOut.MatchString)

		rg.path.Thaw()
		settledAfterFailure(t, rg, pid, fds)
	})

	t.Run("agent stopped past the grace", func(t *testing.T) {
		t.Parallel()
		// A laptop's lid closed: the agent is stopped (SIGSTOP) until the
		// server has ended its session, and continued. The session's
		// slot must be free by then: with --max-sessions 1, the fresh
		// session is refused otherwise.
		rg := newResumeRig(t, rigOpts{sshd: sshd, serverArgs: []string{"--resume-grace", "2s", "--max-sessions", "1"}})
		pid, fds := warm(t, rg)
		bg := sleeper(t, rg)

		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "the server to end the stopped agent's session", func() (bool, string) {
			return rg.srv.Count(logSessionEnded, "did not resume within --resume-grace (2s)") == 1, rg.srv.Log()
		})
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		continued := time.Now()
		ended(t, bg)
		t.Logf("ssh ended %v after SIGCONT", time.Since(continued).Round(time.Millisecond))
		waitUnknownLine(t, bg)

		r := sshEcho(testContext(t, time.Minute), t, sshd, rg.proxy, rg.env, "fresh")
		t.Logf("a new ssh after SIGCONT took %v", r.dur.Round(time.Millisecond))
		rg.settledAgent(t)
		if s := rg.session(t); s.Reconnects != 1 || s.State != "connected" {
			t.Errorf("session %+v: want connected on a fresh session (reconnects 1)", s)
		}
		checkFDs(t, pid, fds)
	})

	t.Run("server stays stopped", func(t *testing.T) {
		t.Parallel()
		// The server is stopped and not continued within the client's
		// --resume-timeout: the agent notices the silence, its attempts
		// wait on a server that takes connections but never answers,
		// and the stream ends with the line that says so.
		rg := newResumeRig(t, rigOpts{sshd: sshd, env: []string{"SANDMUX_RESUME_TIMEOUT=2s"}})
		pid, fds := warm(t, rg)
		bg := sleeper(t, rg)

		rg.srv.Signal(t, syscall.SIGSTOP)
		stopped := time.Now()
		continued := false
		defer func() {
			if !continued {
				rg.srv.Signal(t, syscall.SIGCONT)
			}
		}()
		ended(t, bg)
		t.Logf("ssh ended %v after SIGSTOP", time.Since(stopped).Round(time.Millisecond))
		waitProxyLine(t, bg, "matching "+timedOut.String(), timedOut.MatchString)

		rg.srv.Signal(t, syscall.SIGCONT)
		continued = true
		settledAfterFailure(t, rg, pid, fds)
	})

	// A wrong resume secret is not reachable through the CLI; see
	// server/resume_errors_test.go.

	off := []struct {
		name       string
		serverArgs []string
		env        []string
	}{
		{name: "server resume-grace 0", serverArgs: []string{"--resume-grace", "0"}},
		{name: "agent no-resume", env: []string{noResume}},
	}
	for _, tc := range off {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rg := newResumeRig(t, rigOpts{sshd: sshd, serverArgs: tc.serverArgs, env: tc.env})
			pid, fds := warm(t, rg)
			if s := rg.session(t); s.Resumable {
				t.Errorf("session %+v: want resumable false", s)
			}
			bg := sleeper(t, rg)

			rg.cut(t)
			ended(t, bg)
			prefix := lostLine + ":"
			waitProxyLine(t, bg, "starting "+prefix, func(l string) bool { return strings.HasPrefix(l, prefix) })

			// A session that cannot resume is redialled by the next use,
			// not at once.
			rg.settledIn(t, "idle")
			checkFDs(t, pid, fds)
			if s := rg.session(t); s.Resumable || s.Resumes != 0 {
				t.Errorf("session %+v: want resumable false and no resumes", s)
			}
			sshEcho(testContext(t, time.Minute), t, sshd, rg.proxy, rg.env, "fresh")
		})
	}
}

// TestResumeServerSIGSTOP: the server process is stopped (SIGSTOP) for
// twice its grace period during an idle ssh and then continued (SIGCONT):
// the stream resumes, because the agent keeps trying for --resume-timeout
// (10m) and the server's grace clock does not count time it spent frozen.
//
// "attached" stops the server while it still holds the WebSocket, so it
// only detaches after SIGCONT. "detached" first freezes the path until the
// server has detached the session and started its grace clock, then stops
// it: a wall-clock grace would have run out by SIGCONT. The two, each with
// its own server, run side by side.
func TestResumeServerSIGSTOP(t *testing.T) {
	for _, detachFirst := range []bool{false, true} {
		name := "attached"
		if detachFirst {
			name = "detached"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testResumeServerSIGSTOP(t, detachFirst)
		})
	}
}

func testResumeServerSIGSTOP(t *testing.T, detachFirst bool) {
	const grace, stop = 3 * time.Second, 6 * time.Second
	rg := newResumeRig(t, rigOpts{serverArgs: []string{"--resume-grace", grace.String()}})
	ctx := testContext(t, 2*time.Minute)

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	cmd := rg.command(ctx, t, "ssh", "sandbox", "echo ready; read x; echo back:$x")
	cmd.Stdin = pr
	bg := startBackgroundSSH(t, cmd)
	_ = pr.Close()

	if detachFirst {
		rg.path.Freeze()
		waitFor(t, 5*time.Second, "the server to detach the silent session", func() (bool, string) {
			return rg.srv.Count(logTransportLost) >= 1, rg.srv.Log()
		})
		// The server's grace clock starts at its first tick after the
		// detach (it ticks every grace/8 = 375ms): let it start, so that
		// the stop falls inside the counted grace period.
		time.Sleep(grace / 8 * 5 / 4)
	}
	rg.srv.Signal(t, syscall.SIGSTOP)
	stopped := time.Now()
	continued := false
	cont := func() {
		if !continued {
			continued = true
			rg.srv.Signal(t, syscall.SIGCONT)
		}
	}
	defer cont()
	// The agent notices the silence and redials; its handshake waits in
	// the stopped server's accept queue, or in the frozen path.
	waitFor(t, 5*time.Second, "the agent to notice the silence", func() (bool, string) {
		s := rg.session(t)
		return s.State == "resuming", fmt.Sprintf("%+v", s)
	})
	time.Sleep(stop - time.Since(stopped)) // the fault: 2× the grace
	cont()
	t.Logf("server continued after %v", time.Since(stopped).Round(time.Millisecond))
	if detachFirst {
		// The path stays frozen a little longer, so that the server's
		// grace clock surely ticks after SIGCONT before the resume can
		// reach it: the clock, not a race, must keep the session.
		time.Sleep(time.Second / 2)
		rg.path.Thaw()
	}

	if _, err := io.WriteString(pw, "hello\n"); err != nil {
		t.Fatal(err)
	}
	waitFile(t, bg.outPath, "back:hello\n", 20*time.Second)
	select {
	case <-bg.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("ssh still running 10s after its command ended; stderr %q", bg.stderr())
	}
	if bg.err != nil || bg.stderr() != "" {
		t.Errorf("ssh ended with %v, stderr %q; want success and no output", bg.err, bg.stderr())
	}
	if s := rg.session(t); s.Resumes < 1 || s.Connects != 1 {
		t.Errorf("session %+v: want resumes >= 1 on 1 connect", s)
	}
	if n := rg.srv.Count(logSessionEnded); n != 0 {
		t.Errorf("server ended %d sessions, want 0 (the frozen time is not grace time)\n%s", n, rg.srv.Log())
	}
}

// TestResumeNoAgent: `sandmux proxy --no-agent` resumes its own session
// too: an scp through it survives a cut.
func TestResumeNoAgent(t *testing.T) {
	t.Parallel()
	rg := newResumeRig(t, rigOpts{programs: []string{"scp"}, noAgent: true})
	ctx := testContext(t, 2*time.Minute)
	const size = 32 << 20

	local := t.TempDir()
	src := filepath.Join(local, "up.bin")
	want := sshtest.RandomFile(t, src, size)
	remote := filepath.Join(rg.sshd.Dir, "remote.bin")

	res, done := runAsync(rg.command(ctx, t, "scp", "-q", src, "sandbox:"+remote))
	rg.cutAt(t, done, []string{remote}, cutPoint{at: size / 4})
	r := <-res
	if r.err != nil {
		t.Fatalf("scp --no-agent across a cut: %s", r)
	}
	if r.stderr != "" {
		t.Errorf("scp wrote %q to stderr, want nothing", r.stderr)
	}
	if got := sshtest.FileSHA256(t, remote); got != want {
		t.Fatalf("uploaded file sha256 %s, want %s", got, want)
	}
	if n := rg.srv.Count(logSessionStarted, logModeSandmux, "resumable=true"); n != 1 {
		t.Errorf("server started %d resumable sessions, want 1\n%s", n, rg.srv.Log())
	}
}
