//go:build linux

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// logGraceRanOut is the reason of a "session ended" line whose client
// did not come back within --resume-grace.
const logGraceRanOut = "did not resume within --resume-grace"

// Rounds that stop (freeze) a process rather than kill it: a laptop's lid
// closed, Ctrl-Z, a debugger, a container freezer.

// agentFreezeRound stops the agent (SIGSTOP) until the server has ended
// its session for want of a resume (--resume-grace), then continues it:
// the agent notices at once, each stream through it ends within seconds
// with the one line that says the session could not be resumed, the
// --no-agent transfer beside them completes, and a new ssh through the
// agent gets a fresh session at once.
func (c *chaosRig) agentFreezeRound(ctx context.Context, rng *rand.Rand, r int) ([]*chaosJob, *faultLog) {
	t := c.t
	t.Helper()
	log := &faultLog{}
	start := time.Now()
	before := c.agentSession()
	expired := c.srv.Count(logSessionEnded, logGraceRanOut)
	want := unknownLine
	jobs := c.agentLossRound(ctx, rng, r, func(pid int) time.Time {
		stopped := time.Now()
		signalOrFail(t, pid, syscall.SIGSTOP)
		ended, _ := pollUntil(c.grace+30*time.Second, func() (bool, string) {
			return c.srv.Count(logSessionEnded, logGraceRanOut) > expired, ""
		})
		signalOrFail(t, pid, syscall.SIGCONT)
		if !ended {
			t.Errorf("the server did not end the stopped agent's session within its grace (%v) and 30 s", c.grace)
		}
		log.add(time.Since(start), "agent-freeze", fmt.Sprintf("SIGSTOP until the server's grace ran out: %v", time.Since(stopped).Round(time.Millisecond)))
		return time.Now()
	}, fmt.Sprintf("%q", want), func(l string) bool { return l == want })
	c.freshSSH(log, start, true)
	if s := c.agentSession(); s.Reconnects != before.Reconnects+1 || s.State != "connected" {
		t.Errorf("agent session %+v after its freeze, want connected on reconnect #%d", s, before.Reconnects+1)
	}
	return jobs, log
}

// proxyFreezeRound stops two --no-agent proxies under transfers
// (SIGSTOP): one for 3-6 keepalives, less than the grace, which resumes
// when continued, every byte intact; the other until the server has ended
// its session for want of a resume, whose stream then ends within seconds
// with the one line that says so. A transfer through the agent beside
// them completes, and the server frees what the ended session held.
func (c *chaosRig) proxyFreezeRound(ctx context.Context, rng *rand.Rand, r int) ([]*chaosJob, *faultLog) {
	t := c.t
	t.Helper()
	f := c.roundFiles(r)
	defer f.remove()
	long := c.newJob(ctx, "stream", false, 1<<40, rng.Uint64(), f, 0)
	short := c.newJob(ctx, "scp-down", false, 32<<20+rng.Int64N(32<<20), rng.Uint64(), f, 1)
	throttleSCP(short.cmd)
	other := c.newJob(ctx, "stream", true, 8<<20+rng.Int64N(8<<20), rng.Uint64(), f, 2)
	rest := make(chan []error, 1)
	log := &faultLog{}
	start := time.Now()
	expired := c.srv.Count(logSessionEnded, logGraceRanOut)
	shortFor := keepaliveSpan(rng, 3, 6)
	errs, took := runEndingAfter(t, []*chaosJob{long}, func() time.Time {
		go func() { rest <- runJobs([]*chaosJob{short, other}) }()
		awaitProgress(t, []*chaosJob{short}, 256<<10)
		lp, sp := proxyOf(long.process()), proxyOf(short.process())
		stopped := time.Now()
		signalOrFail(t, lp, syscall.SIGSTOP)
		signalOrFail(t, sp, syscall.SIGSTOP)
		sleepOrStop(shortFor, nil)
		signalOrFail(t, sp, syscall.SIGCONT)
		log.add(time.Since(start), "proxy-freeze", fmt.Sprintf("%s's proxy SIGSTOP for %v", short.name, shortFor.Round(time.Millisecond)))
		ended, _ := pollUntil(c.grace+30*time.Second, func() (bool, string) {
			return c.srv.Count(logSessionEnded, logGraceRanOut) > expired, ""
		})
		signalOrFail(t, lp, syscall.SIGCONT)
		if !ended {
			t.Errorf("the server did not end the stopped proxy's session within its grace (%v) and 30 s", c.grace)
		}
		log.add(time.Since(start), "proxy-freeze", fmt.Sprintf("%s's proxy SIGSTOP until the server's grace ran out: %v", long.name, time.Since(stopped).Round(time.Millisecond)))
		return time.Now()
	})
	want := unknownLine
	endedWithLine(t, long, errs[0], took[0], 10*time.Second, fmt.Sprintf("%q", want), func(l string) bool { return l == want })
	long.bytes = long.progress()
	for _, err := range <-rest {
		if err != nil {
			t.Errorf("round %d, a proxy stopped for less than the grace, or beside: %v", r, err)
		}
	}
	if n := c.srv.Count(logSessionEnded, logGraceRanOut) - expired; n != 1 {
		t.Errorf("the server ended %d sessions on their grace, want 1 (the proxy stopped past it)", n)
	}
	c.freshSSH(log, start, false)
	return []*chaosJob{long, short, other}, log
}

// serverFreezeRound stops the server (SIGSTOP) for 3-8 keepalives under
// transfers through the agent and --no-agent, and opens an ssh through
// each meanwhile: the clients notice the silence and try to resume, the
// server's grace clock does not count the time it was stopped, and after
// SIGCONT every transfer completes byte-exact and the ssh commands opened
// meanwhile answer.
func (c *chaosRig) serverFreezeRound(ctx context.Context, rng *rand.Rand, r int) ([]*chaosJob, *faultLog) {
	t := c.t
	t.Helper()
	f := c.roundFiles(r)
	defer f.remove()
	jobs := []*chaosJob{
		c.newJob(ctx, "stream", true, 8<<20+rng.Int64N(16<<20), rng.Uint64(), f, 0),
		c.newJob(ctx, "scp-up", true, 16<<20+rng.Int64N(32<<20), rng.Uint64(), f, 1),
		c.newJob(ctx, "stream", false, 4<<20+rng.Int64N(8<<20), rng.Uint64(), f, 2),
		c.newJob(ctx, "sftp", false, 4<<20+rng.Int64N(8<<20), rng.Uint64(), f, 3),
	}
	log := &faultLog{}
	start := time.Now()
	stopFor := keepaliveSpan(rng, 3, 8)
	lost, expired := c.srv.Count(logTransportLost), c.srv.Count(logSessionEnded, logGraceRanOut)
	type opened struct {
		agent bool
		res   <-chan result
	}
	var opens []opened
	errs, _ := runEnding(t, jobs, func() {
		c.srv.Signal(t, syscall.SIGSTOP)
		stopped := time.Now()
		// The clients' keepalive (1 s) notices the silence; then a new
		// ssh through each waits on a stopped server.
		sleepOrStop(2*time.Second, nil)
		for _, agent := range []bool{true, false} {
			res, _ := runAsync(c.program(ctx, agent, "ssh", "sandbox", "echo", "opened-frozen"))
			opens = append(opens, opened{agent, res})
		}
		sleepOrStop(stopFor-time.Since(stopped), nil)
		c.srv.Signal(t, syscall.SIGCONT)
		log.add(time.Since(start), "server-freeze", fmt.Sprintf("SIGSTOP for %v", time.Since(stopped).Round(time.Millisecond)))
	})
	for _, err := range errs {
		if err != nil {
			t.Errorf("round %d, across the server's freeze: %v", r, err)
		}
	}
	for _, o := range opens {
		res := <-o.res
		if res.err != nil || res.stdout != "opened-frozen\n" {
			t.Errorf("an ssh opened (agent %v) while the server was stopped: %s", o.agent, res)
		}
		log.add(time.Since(start), "opened-frozen", fmt.Sprintf("agent %v: %v", o.agent, res.dur.Round(time.Millisecond)))
	}
	if c.srv.Count(logTransportLost) == lost {
		t.Errorf("the server lost no WebSocket across a %v stop: the clients did not notice the silence", stopFor)
	}
	if n := c.srv.Count(logSessionEnded, logGraceRanOut) - expired; n > 0 {
		t.Errorf("the server ended %d sessions on their grace: the time it was stopped counted", n)
	}
	return jobs, log
}

// sshSuspendRound suspends transfers as Ctrl-Z does (SIGTSTP to each
// job's process group: ssh, or scp and its ssh, and the ProxyCommand)
// for longer than the keepalive and the server's grace, through the agent
// and --no-agent, and continues them as fg does: flow control holds the
// streams still, no session is lost, and every transfer completes
// byte-exact with nothing on stderr.
func (c *chaosRig) sshSuspendRound(ctx context.Context, rng *rand.Rand, r int) ([]*chaosJob, *faultLog) {
	t := c.t
	t.Helper()
	f := c.roundFiles(r)
	defer f.remove()
	stop := make(chan struct{})
	var jobs []*chaosJob
	for i, agent := range []bool{true, false} {
		down := c.newJob(ctx, "scp-down", agent, 32<<20+rng.Int64N(32<<20), rng.Uint64(), f, 2*i)
		throttleSCP(down.cmd)
		echo := c.newJob(ctx, "stream", agent, 1<<40, rng.Uint64(), f, 2*i+1)
		echo.stream.stop, echo.stream.rate = stop, 1<<20
		jobs = append(jobs, down, echo)
	}
	for _, j := range jobs {
		j.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	}
	log := &faultLog{}
	lost := c.srv.Count(logTransportLost)
	errs, _ := runEnding(t, jobs, func() {
		suspendJobs(t, jobs, c.grace+keepaliveSpan(rng, 2, 4), log)
		close(stop)
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("round %d, after Ctrl-Z and fg: %v", r, err)
		} else if s := jobs[i].stderr(); s != "" {
			t.Errorf("round %d: %s wrote %q to stderr, want nothing", r, jobs[i].name, s)
		}
		jobs[i].bytes = jobs[i].progress()
	}
	if n := c.srv.Count(logTransportLost) - lost; n != 0 {
		t.Errorf("round %d: the server lost %d WebSockets while the jobs were suspended, want none", r, n)
	}
	return jobs, log
}

// runEndingAfter is runEnding whose fault returns the moment the time to
// end is counted from (the end of a freeze).
func runEndingAfter(t *testing.T, jobs []*chaosJob, fault func() time.Time) ([]error, []time.Duration) {
	t.Helper()
	errs := make([]error, len(jobs))
	ended := make([]time.Time, len(jobs))
	done := make(chan int, len(jobs))
	for i, j := range jobs {
		go func() {
			errs[i] = j.run()
			ended[i] = time.Now()
			done <- i
		}()
	}
	awaitProgress(t, jobs, 256<<10)
	at := fault()
	for range jobs {
		<-done
	}
	took := make([]time.Duration, len(jobs))
	for i := range jobs {
		took[i] = ended[i].Sub(at)
	}
	return errs, took
}

// freshSSH checks that a new ssh through the agent or --no-agent works at
// once, and logs how long it took.
func (c *chaosRig) freshSSH(log *faultLog, start time.Time, agent bool) {
	t := c.t
	t.Helper()
	res := run(c.program(testContext(t, time.Minute), agent, "ssh", "sandbox", "echo", "fresh"), "")
	if res.err != nil || res.stdout != "fresh\n" {
		t.Errorf("a new ssh (agent %v) after the freeze: %s", agent, res)
	} else if res.dur > 5*time.Second {
		t.Errorf("a new ssh (agent %v) after the freeze took %v, want it at once", agent, res.dur)
	}
	log.add(time.Since(start), "new-ssh", fmt.Sprintf("agent %v: %v", agent, res.dur.Round(time.Millisecond)))
}

// agentSession is the agent's one session, as `sandmux status` says.
func (c *chaosRig) agentSession() sessionStatus {
	c.t.Helper()
	return onlySession(c.t, status(c.t, c.dir))
}

// signalOrFail sends sig to pid; never to 0 or -1, which would signal
// this test's own process group or every process.
func signalOrFail(t *testing.T, pid int, sig syscall.Signal) {
	t.Helper()
	if pid <= 0 {
		t.Errorf("%v: no process to signal (pid %d)", sig, pid)
		return
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Errorf("%v to %d: %v", sig, pid, err)
	}
}

// throttleSCP caps an scp command at 5 MB/s (-l, in Kbit/s), so that a
// transfer a fault must meet is still running when it comes.
func throttleSCP(cmd *exec.Cmd) {
	cmd.Args = append([]string{cmd.Args[0], "-l", "40000"}, cmd.Args[1:]...)
}

// proxyOf is the pid of the `sandmux proxy` that process root (ssh, or
// scp with its ssh) started, or 0.
func proxyOf(root int) int {
	parent := map[int]int{}
	for _, pid := range processes(func(int, []string) bool { return true }) {
		if pp, ok := parentPID(pid); ok {
			parent[pid] = pp
		}
	}
	for _, pid := range proxyLike() {
		for p := parent[pid]; p > 1; p = parent[p] {
			if p == root {
				return pid
			}
		}
	}
	return 0
}

// proxyLike are the running `sandmux proxy` processes.
func proxyLike() []int {
	return processes(func(pid int, args []string) bool {
		return len(args) > 1 && args[0] == sandmuxBin && args[1] == "proxy" && !processGone(pid)
	})
}

// parentPID reads pid's parent from /proc.
func parentPID(pid int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// After the command name, in parentheses that it may itself hold:
	// the state, then the parent.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(f[1])
	return pp, err == nil
}
