//go:build linux

package e2e

// Chaos: real scp, sftp, rsync and long `ssh sandbox cat` streams, through
// the agent and through --no-agent proxies at once, every byte checked,
// while the fault proxy cuts the path (at random byte offsets, in the
// upgrade, in the resume handshake, twice in a row), black-holes it past
// the keepalive, strands its connections and slows it to a trickle; and
// rounds in which the server is killed and restarted, the agent is
// stopped past the server's keepalive, or killed, and rounds that stop
// (freeze) a process as a closed lid, Ctrl-Z or a debugger does: the
// agent or a --no-agent proxy past the server's grace, the server past
// the clients' keepalive, ssh and scp jobs past both. After each round the
// agent's and the server's descriptors, the server's goroutines, sessions
// and streams must be back at their baseline. Opt-in (minutes):
//
//	SANDMUX_CHAOS=1 go test -run '^TestChaos$' -count=1 -v ./e2e/
//
// SANDMUX_CHAOS_ROUNDS (default 16) sets the rounds, SANDMUX_CHAOS_SEED
// the seed, which a failure prints: the same seed makes the same plan
// (jobs, sizes, the faults and their offsets), though not the same timing.
// SANDMUX_CHAOS_ONLY=path, or the name of a special round (server-restart,
// agent-stop, agent-kill, agent-kill-open, agent-freeze, proxy-freeze,
// server-freeze, ssh-suspend), makes every round that kind.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chaosTotals sums a run up for its last log line.
type chaosTotals struct {
	transfers, failedOnPurpose int
	bytes                      int64
	faults                     map[string]int
}

func (s *chaosTotals) add(jobs []*chaosJob, log *faultLog) {
	for _, j := range jobs {
		s.transfers++
		s.bytes += j.bytes
		if j.ended {
			s.failedOnPurpose++
		}
	}
	if s.faults == nil {
		s.faults = map[string]int{}
	}
	for k, v := range log.counts {
		s.faults[k] += v
	}
}

func TestChaos(t *testing.T) {
	if os.Getenv("SANDMUX_CHAOS") == "" {
		t.Skip("opt-in: SANDMUX_CHAOS=1 (make chaos)")
	}
	rounds := 16
	if v := os.Getenv("SANDMUX_CHAOS_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("SANDMUX_CHAOS_ROUNDS=%q: want a positive number of rounds", v)
		}
		rounds = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SANDMUX_CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SANDMUX_CHAOS_SEED=%q: want an unsigned number", v)
		}
		seed = n
	}
	only := os.Getenv("SANDMUX_CHAOS_ONLY")
	if only != "" && only != "path" && !slices.ContainsFunc(chaosSpecials, func(s chaosSpecial) bool { return s.name == only }) {
		t.Fatalf("SANDMUX_CHAOS_ONLY=%q: want path or a special round's name", only)
	}
	t.Logf("chaos seed %d, %d rounds", seed, rounds)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay: SANDMUX_CHAOS=1 SANDMUX_CHAOS_SEED=%d SANDMUX_CHAOS_ROUNDS=%d SANDMUX_CHAOS_ONLY=%s go test -run '^TestChaos$' -count=1 -v ./e2e/", seed, rounds, only)
		}
	})
	runChaos(t, seed, rounds, only)
}

// chaosSpecial is a round that faults a process rather than the path.
type chaosSpecial struct {
	name string
	run  func(c *chaosRig, ctx context.Context, rng *rand.Rand, r int) ([]*chaosJob, *faultLog)
}

// chaosSpecials are the rounds that fault a process rather than the
// path; every other round is one of them, in turn, so that the default
// 16 rounds run each once.
var chaosSpecials = []chaosSpecial{
	{"server-restart", (*chaosRig).serverRestartRound},
	{"agent-stop", (*chaosRig).agentStopRound},
	{"agent-kill", (*chaosRig).agentKillRound},
	{"agent-kill-open", (*chaosRig).agentKillOpenRound},
	{"agent-freeze", (*chaosRig).agentFreezeRound},
	{"proxy-freeze", (*chaosRig).proxyFreezeRound},
	{"server-freeze", (*chaosRig).serverFreezeRound},
	{"ssh-suspend", (*chaosRig).sshSuspendRound},
}

// runChaos runs rounds drawn from seed; only, if not empty, makes every
// round a path round ("path") or the special round of that name.
func runChaos(t *testing.T, seed uint64, rounds int, only string) {
	c := newChaosRig(t, "scp", "sftp", "rsync")
	rng := rand.New(rand.NewPCG(seed, 0x5a4d))
	sshEcho(testContext(t, time.Minute), t, c.sshd, c.proxy, c.env, "warm")
	c.settledAgent(t)
	base, err := c.gauges()
	if err != nil {
		t.Fatal(err)
	}
	first := base
	t.Logf("baseline: %v", base)

	var tot chaosTotals
	for r := range rounds {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		start := time.Now()
		var jobs []*chaosJob
		var log *faultLog
		name := "path"
		i := slices.IndexFunc(chaosSpecials, func(s chaosSpecial) bool { return s.name == only })
		if only == "" && r%2 == 1 {
			i = (r / 2) % len(chaosSpecials)
		}
		if i >= 0 {
			s := chaosSpecials[i]
			name = s.name
			jobs, log = s.run(c, ctx, rng, r)
		} else {
			jobs, log = c.pathRound(ctx, rng, r)
		}
		cancel()
		tot.add(jobs, log)
		var mib int64
		for _, j := range jobs {
			mib += j.bytes
		}
		t.Logf("round %d (%s): %d jobs, %d MiB, faults %v, %v\n%s", r, name, len(jobs), mib>>20, log.counts, time.Since(start).Round(time.Millisecond), log)
		if t.Failed() {
			return
		}
		if name == "server-restart" || strings.HasPrefix(name, "agent-kill") {
			// A new process, a new baseline; the other side's must hold.
			fresh, err := c.freshBase(base)
			if err != nil {
				t.Fatalf("round %d: %v", r, err)
			}
			base = fresh
		}
		g, err := c.settle(base)
		if err != nil {
			t.Fatalf("round %d (%s): %v", r, name, err)
		}
		t.Logf("round %d settled: %v", r, g)
		// Memory is not a count that must come back exactly (the heap
		// and the GC's goal keep some), but it must not keep growing.
		if g.agentRSS > 2*base.agentRSS+64<<10 || g.srvRSS > 2*base.srvRSS+64<<10 {
			t.Errorf("round %d: RSS grew to agent %d MiB, server %d MiB from %d MiB and %d MiB", r, g.agentRSS>>10, g.srvRSS>>10, base.agentRSS>>10, base.srvRSS>>10)
		}
	}
	last, _ := c.gauges()
	t.Logf("chaos seed %d: %d rounds, %d transfers (%d meant to be ended by a kill), %d MiB through the tunnel, faults %v, server resumptions %d",
		seed, rounds, tot.transfers, tot.failedOnPurpose, tot.bytes>>20, tot.faults, c.srv.Count(logSessionResumed))
	t.Logf("first %v\nlast  %v", first, last)
	// Evidence that the handshake faults landed in handshakes.
	t.Logf("agent: %d resume attempts failed; server: %d v2 upgrades cut before their hello",
		strings.Count(agentLog(c.dir), `msg="resume: dial failed; retrying"`), c.srv.Count(`msg="no valid hello on a sandmux.v2 connection"`))
}

// agentPID is the pid of the agent running in the rig's directory, once
// one runs. Never 0: kill(0, sig) would signal this test's own process
// group.
func (c *chaosRig) agentPID() int {
	c.t.Helper()
	var pid int
	waitFor(c.t, startTimeout, "an agent running in "+c.dir, func() (bool, string) {
		st, err := readStatus(c.dir)
		if err != nil {
			return false, err.Error()
		}
		pid = st.PID
		return st.Running && pid > 0, fmt.Sprintf("%+v", st)
	})
	return pid
}

// freshBase is the baseline after a process was replaced: the new one's
// own, once the agent's session is up, with the old one's slack.
func (c *chaosRig) freshBase(old chaosGauges) (chaosGauges, error) {
	g, err := c.awaitGauges(func(g chaosGauges) bool { return g.sessions == old.sessions })
	if err != nil {
		return g, fmt.Errorf("no fresh baseline: %w", err)
	}
	if g.srvPID == old.srvPID {
		g.srvFDs, g.goroutines = old.srvFDs, old.goroutines
	}
	if g.agentPID == old.agentPID {
		g.agentFDs = old.agentFDs
	}
	return g, nil
}

// pathRound runs 4 to 7 transfers of 1 to 16 MiB (through the agent and
// --no-agent) while faults of the path come one after another; every
// transfer must complete byte-exact.
func (c *chaosRig) pathRound(ctx context.Context, rng *rand.Rand, r int) ([]*chaosJob, *faultLog) {
	c.t.Helper()
	f := c.roundFiles(r)
	defer f.remove()
	jobs := make([]*chaosJob, 4+rng.IntN(4))
	for i := range jobs {
		kind := chaosKinds[rng.IntN(len(chaosKinds))]
		agent := i == 0 || (i != 1 && rng.IntN(3) > 0)
		size := int64(1<<20 + rng.IntN(15<<20))
		jobs[i] = c.newJob(ctx, kind, agent, size, rng.Uint64(), f, i)
	}
	// Short ssh commands beside them, one after another, through each:
	// new streams and (--no-agent) new sessions under the faults.
	jobs = append(jobs,
		c.newJob(ctx, "shorts", true, 1<<20, 0, f, len(jobs)),
		c.newJob(ctx, "shorts", false, 1<<20, 0, f, len(jobs)+1))
	faultRng := rand.New(rand.NewPCG(rng.Uint64(), 2))
	log := &faultLog{}
	start := time.Now()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		injectFaults(c.path, faultRng, stop, log)
	}()
	errs := runJobs(jobs)
	close(stop)
	<-done
	for i, err := range errs {
		lines := sandmuxLines(jobs[i].stderr())
		switch {
		case err == nil:
		case !jobs[i].agent && len(lines) == 1 && isNewSessionLoss(lines[0]):
			// A --no-agent ssh (rsync's second) whose first connection
			// a fault reset: it may fail, with this one line.
			jobs[i].refused = append(jobs[i].refused, lines[0])
		default:
			c.t.Errorf("round %d: %v", r, err)
		}
		for _, l := range jobs[i].refused {
			log.add(time.Since(start), "refused", fmt.Sprintf("%s: %s", jobs[i].name, l))
		}
	}
	return jobs, log
}

// awaitProgress waits until every job has moved at least n bytes.
func awaitProgress(t *testing.T, jobs []*chaosJob, n int64) {
	t.Helper()
	waitFor(t, time.Minute, fmt.Sprintf("every job to move %d bytes", n), func() (bool, string) {
		var got []string
		ok := true
		for _, j := range jobs {
			p := j.progress()
			got = append(got, fmt.Sprintf("%s: %d", j.name, p))
			ok = ok && p >= n
		}
		return ok, strings.Join(got, ", ")
	})
}

// endedWithLine checks that a job a fault was meant to end failed within
// limit of at, with exactly one sandmux line on its stderr, the one
// match accepts.
func endedWithLine(t *testing.T, j *chaosJob, err error, took time.Duration, limit time.Duration, desc string, match func(string) bool) {
	t.Helper()
	j.ended = true
	t.Logf("%s ended %v after the fault; stderr %q", j.name, took.Round(time.Millisecond), j.stderr())
	if err == nil {
		t.Errorf("%s: succeeded, want it ended by the fault", j.name)
		return
	}
	if took > limit {
		t.Errorf("%s: ended %v after the fault, want within %v", j.name, took.Round(time.Millisecond), limit)
	}
	lines := sandmuxLines(j.stderr())
	if len(lines) != 1 || !match(lines[0]) {
		t.Errorf("%s: stderr %q: want exactly one sandmux line, %s", j.name, j.stderr(), desc)
	}
}

// runEnding runs jobs, calls fault once they all move, and returns each
// job's error and how long after the fault it ended.
func runEnding(t *testing.T, jobs []*chaosJob, fault func()) ([]error, []time.Duration) {
	t.Helper()
	return runEndingAfter(t, jobs, func() time.Time {
		at := time.Now()
		fault()
		return at
	})
}

// serverRestartRound kills the server (-9) and starts it again, as a
// sandbox restart does, under long streams through the agent and
// --no-agent: the old session cannot resume, so each stream ends with
// the one line that says so, and a new ssh works at once.
func (c *chaosRig) serverRestartRound(ctx context.Context, rng *rand.Rand, r int) ([]*chaosJob, *faultLog) {
	t := c.t
	t.Helper()
	f := c.roundFiles(r)
	defer f.remove()
	jobs := []*chaosJob{
		c.newJob(ctx, "stream", true, 1<<40, rng.Uint64(), f, 0),
		c.newJob(ctx, "stream", false, 1<<40, rng.Uint64(), f, 1),
		c.newJob(ctx, "scp-down", true, 256<<20, rng.Uint64(), f, 2),
	}
	log := &faultLog{}
	start := time.Now()
	errs, took := runEnding(t, jobs, func() {
		c.srv.Kill()
		c.srv.Restart()
		log.add(time.Since(start), "server-restart", "kill -9, restarted on the same port")
	})
	want := unknownLine
	for i, j := range jobs {
		endedWithLine(t, j, errs[i], took[i], 20*time.Second, fmt.Sprintf("%q", want), func(l string) bool { return l == want })
		jobs[i].bytes = j.progress()
	}
	for _, agent := range []bool{true, false} {
		res := run(c.program(testContext(t, time.Minute), agent, "ssh", "sandbox", "echo", "fresh"), "")
		if res.err != nil || res.stdout != "fresh\n" {
			t.Errorf("a new ssh (agent %v) after the server's restart: %s", agent, res)
		} else if res.dur > 5*time.Second {
			t.Errorf("a new ssh (agent %v) after the server's restart took %v, want it at once", agent, res.dur)
		}
		log.add(time.Since(start), "new-ssh", fmt.Sprintf("agent %v: %v", agent, res.dur.Round(time.Millisecond)))
	}
	return jobs, log
}

// agentStopRound stops the agent (SIGSTOP) for longer than the server
// waits on a silent client, then continues it: the server has detached
// the session meanwhile, the agent resumes it, and every transfer,
// through the agent or not, completes byte-exact.
func (c *chaosRig) agentStopRound(ctx context.Context, rng *rand.Rand, r int) ([]*chaosJob, *faultLog) {
	t := c.t
	t.Helper()
	f := c.roundFiles(r)
	defer f.remove()
	jobs := []*chaosJob{
		c.newJob(ctx, "stream", true, 8<<20+rng.Int64N(24<<20), rng.Uint64(), f, 0),
		c.newJob(ctx, "scp-up", true, 16<<20+rng.Int64N(32<<20), rng.Uint64(), f, 1),
		c.newJob(ctx, "sftp", true, 4<<20+rng.Int64N(8<<20), rng.Uint64(), f, 2),
		c.newJob(ctx, "stream", false, 4<<20+rng.Int64N(8<<20), rng.Uint64(), f, 3),
	}
	log := &faultLog{}
	start := time.Now()
	pid := c.agentPID()
	lost := c.srv.Count(logTransportLost)
	stopFor := keepaliveSpan(rng, 3, 6)
	errs, _ := runEnding(t, jobs, func() {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Errorf("SIGSTOP agent %d: %v", pid, err)
			return
		}
		stopped := time.Now()
		detached, _ := pollUntil(stopFor, func() (bool, string) { return c.srv.Count(logTransportLost) > lost, "" })
		sleepOrStop(stopFor-time.Since(stopped), nil)
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Errorf("SIGCONT agent %d: %v", pid, err)
		}
		if !detached {
			t.Errorf("the server did not detach the agent's session while the agent was stopped for %v", stopFor)
		}
		log.add(time.Since(start), "agent-stop", fmt.Sprintf("SIGSTOP for %v, server detached: %v", stopFor.Round(time.Millisecond), detached))
	})
	for _, err := range errs {
		if err != nil {
			t.Errorf("round %d: %v", r, err)
		}
	}
	return jobs, log
}

// agentKillRound kills the agent (-9) under streams through it: each of
// them ends at once with the one line that says the agent died, the
// --no-agent transfer beside them completes, and the next ssh starts a
// new agent.
func (c *chaosRig) agentKillRound(ctx context.Context, rng *rand.Rand, r int) ([]*chaosJob, *faultLog) {
	t := c.t
	t.Helper()
	log := &faultLog{}
	start := time.Now()
	want := "the sandmux agent exited while the stream was open"
	jobs := c.agentLossRound(ctx, rng, r, func(pid int) time.Time {
		at := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Errorf("kill -9 agent %d: %v", pid, err)
		}
		log.add(time.Since(start), "agent-kill", fmt.Sprintf("kill -9 %d", pid))
		return at
	}, "saying "+want, func(l string) bool { return strings.Contains(l, want) })
	res := run(c.program(testContext(t, time.Minute), true, "ssh", "sandbox", "echo", "fresh"), "")
	if res.err != nil || res.stdout != "fresh\n" {
		t.Errorf("a new ssh after the agent's kill: %s", res)
	}
	log.add(time.Since(start), "new-ssh", fmt.Sprintf("through a new agent: %v", res.dur.Round(time.Millisecond)))
	return jobs, log
}

// agentLossRound runs two streams through the agent and a --no-agent one
// beside them, and once they move calls fault with the agent's pid: fault
// ends the agent's session and returns the moment the streams' end is
// timed from. Each stream through the agent must end within 10 s of it
// with the one sandmux line match accepts (desc says which), and the
// --no-agent one complete.
func (c *chaosRig) agentLossRound(ctx context.Context, rng *rand.Rand, r int, fault func(pid int) time.Time, desc string, match func(string) bool) []*chaosJob {
	t := c.t
	t.Helper()
	f := c.roundFiles(r)
	defer f.remove()
	lost := []*chaosJob{
		c.newJob(ctx, "stream", true, 1<<40, rng.Uint64(), f, 0),
		c.newJob(ctx, "scp-down", true, 256<<20, rng.Uint64(), f, 1),
	}
	other := c.newJob(ctx, "stream", false, 8<<20+rng.Int64N(8<<20), rng.Uint64(), f, 2)
	otherErr := make(chan error, 1)
	pid := c.agentPID()
	errs, took := runEndingAfter(t, lost, func() time.Time {
		go func() { otherErr <- other.run() }()
		return fault(pid)
	})
	for i, j := range lost {
		endedWithLine(t, j, errs[i], took[i], 10*time.Second, desc, match)
		lost[i].bytes = j.progress()
	}
	if err := <-otherErr; err != nil {
		t.Errorf("round %d, beside the agent's fault: %v", r, err)
	}
	return append(lost, other)
}

// agentKillOpenRound kills the agent (-9) while new ssh commands are
// being opened through it, a random 0-400 ms after they start: each must
// either complete, or fail with one sandmux line; none may hang or print
// a wrong answer. Ten times, each killing the agent the last one started.
func (c *chaosRig) agentKillOpenRound(ctx context.Context, rng *rand.Rand, r int) ([]*chaosJob, *faultLog) {
	t := c.t
	t.Helper()
	log := &faultLog{}
	start := time.Now()
	var jobs []*chaosJob
	for it := range 10 {
		type answer struct {
			want string
			result
		}
		res := make(chan answer, 3)
		for i := range 3 {
			word := fmt.Sprintf("open-%d-%d", it, i)
			cmd := c.program(ctx, true, "ssh", "sandbox", "echo", word)
			go func() { res <- answer{word + "\n", run(cmd, "")} }()
			jobs = append(jobs, &chaosJob{name: word, bytes: 1})
		}
		// The first ssh started the agent if none ran.
		pid := c.agentPID()
		sleepOrStop(time.Duration(rng.IntN(400))*time.Millisecond, nil)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Errorf("kill -9 agent %d: %v", pid, err)
		}
		ok, failed := 0, []string{}
		for range 3 {
			select {
			case rr := <-res:
				lines := sandmuxLines(rr.stderr)
				switch {
				case rr.err == nil && rr.stdout == rr.want:
					ok++
				case rr.err != nil && len(lines) == 1:
					failed = append(failed, lines[0])
				default:
					t.Errorf("ssh opened as the agent was killed: want %q, or one sandmux line\n%s", rr.want, rr.result)
				}
			case <-time.After(time.Minute):
				t.Fatalf("ssh opened as the agent was killed still runs after a minute")
			}
		}
		log.add(time.Since(start), "agent-kill-open", fmt.Sprintf("%d answered, failed: %q", ok, failed))
	}
	res := run(c.program(testContext(t, time.Minute), true, "ssh", "sandbox", "echo", "fresh"), "")
	if res.err != nil || res.stdout != "fresh\n" {
		t.Errorf("a new ssh after the agent's kills: %s", res)
	}
	return jobs, log
}
