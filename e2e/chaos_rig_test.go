//go:build linux

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
)

// chaosGrace is the chaos server's --resume-grace: longer than any path
// fault lasts, short enough that a session whose agent was killed ends
// within a round.
const chaosGrace = 30 * time.Second

// chaosRig is a resumeRig (agent mode, 1 s keepalives, the fault proxy in
// front of the server) that also reaches the server through --no-agent
// proxies, and serves the server's metrics for the leak checks.
type chaosRig struct {
	*resumeRig
	t            *testing.T
	metrics      string // the server's --metrics-listen
	noAgentProxy string
	grace        time.Duration // the server's --resume-grace
}

// newChaosRig starts it; programs are the OpenSSH (and other) programs
// needed beyond ssh.
func newChaosRig(t *testing.T, programs ...string) *chaosRig {
	t.Helper()
	return newChaosRigGrace(t, chaosGrace, programs...)
}

// newChaosRigGrace is newChaosRig with the server's --resume-grace set
// to grace.
func newChaosRigGrace(t *testing.T, grace time.Duration, programs ...string) *chaosRig {
	t.Helper()
	rg := newResumeRig(t, rigOpts{
		programs:   programs,
		serverArgs: []string{"--resume-grace", grace.String()},
		metrics:    true,
		// A trickle must slow the senders down, not fill a 64 MiB
		// queue per connection in the proxy that no keepalive could
		// cross for minutes.
		inFlight: 128 << 10,
	})
	return &chaosRig{resumeRig: rg, t: t, metrics: rg.srv.Metrics, noAgentProxy: proxyCommand("ws://"+rg.path.Addr(), ""), grace: grace}
}

// proxyFor is ssh's ProxyCommand through the agent or --no-agent.
func (c *chaosRig) proxyFor(agent bool) string {
	if agent {
		return c.proxy
	}
	return c.noAgentProxy
}

// program builds an OpenSSH client command through the agent or not.
func (c *chaosRig) program(ctx context.Context, agent bool, program string, args ...string) *exec.Cmd {
	c.t.Helper()
	return c.withEnv(c.sshd.Command(ctx, c.t, program, c.proxyFor(agent), args...))
}

// withEnv gives cmd the rig's environment (1 s keepalives).
func (c *chaosRig) withEnv(cmd *exec.Cmd) *exec.Cmd {
	cmd.Env = childEnv(c.env...)
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// chaosGauges are what must come back to their baseline after a round:
// descriptors, goroutines, sessions and streams.
type chaosGauges struct {
	agentPID, agentFDs int
	agentRSS           int64 // KiB
	srvPID, srvFDs     int
	srvRSS             int64 // KiB
	// From the server's /metrics.
	goroutines, sessions, streams int
	proxies                       int // --no-agent proxies still running
}

func (g chaosGauges) String() string {
	return fmt.Sprintf("agent pid %d: %d fds, %d MiB; server pid %d: %d fds, %d MiB, %d goroutines, %d sessions, %d streams; %d proxies left",
		g.agentPID, g.agentFDs, g.agentRSS>>10, g.srvPID, g.srvFDs, g.srvRSS>>10, g.goroutines, g.sessions, g.streams, g.proxies)
}

// gauges reads them now.
func (c *chaosRig) gauges() (chaosGauges, error) {
	var g chaosGauges
	st, err := readStatus(c.dir)
	if err != nil {
		return g, err
	}
	if !st.Running {
		return g, fmt.Errorf("no agent runs in %s", c.dir)
	}
	g.agentPID = st.PID
	g.srvPID = c.srv.cmd.Process.Pid
	if g.agentFDs, err = countFDs(g.agentPID); err != nil {
		return g, err
	}
	if g.srvFDs, err = countFDs(g.srvPID); err != nil {
		return g, err
	}
	if g.agentRSS, err = readRSS(g.agentPID); err != nil {
		return g, err
	}
	if g.srvRSS, err = readRSS(g.srvPID); err != nil {
		return g, err
	}
	m, err := scrape("http://" + c.metrics + "/metrics")
	if err != nil {
		return g, err
	}
	// A name missing from the scrape (renamed, or given a label) would
	// read as 0 and pass every check against a baseline of 0.
	for _, name := range []string{"go_goroutines", "sandmux_sessions_active", "sandmux_streams_active"} {
		if _, ok := m[name]; !ok {
			return g, fmt.Errorf("the server's /metrics has no unlabelled %s", name)
		}
	}
	g.goroutines, g.sessions, g.streams = int(m["go_goroutines"]), int(m["sandmux_sessions_active"]), int(m["sandmux_streams_active"])
	g.proxies = len(proxyPIDs())
	return g, nil
}

// settle waits until the gauges are back at base (descriptors within 3,
// goroutines within 4, no stream, the agent's one session connected, no
// --no-agent proxy left) and returns them. A session whose agent was
// killed holds the server's resources for the grace, so the wait is
// longer than that.
func (c *chaosRig) settle(base chaosGauges) (chaosGauges, error) {
	g, err := c.awaitGauges(func(g chaosGauges) bool {
		return near(g.agentFDs, base.agentFDs, 3) && near(g.srvFDs, base.srvFDs, 3) &&
			g.goroutines <= base.goroutines+4 && g.sessions == base.sessions
	})
	if err != nil {
		return g, fmt.Errorf("not back to the baseline (%v): %w", base, err)
	}
	return g, nil
}

// awaitGauges waits until the agent's one session is connected with no
// stream open, the server has no stream, no --no-agent proxy is left,
// and ok accepts the gauges, and returns them.
func (c *chaosRig) awaitGauges(ok func(chaosGauges) bool) (chaosGauges, error) {
	var g chaosGauges
	var why string
	limit := c.grace + 30*time.Second
	done := testutil.Poll(limit, func() bool {
		var err error
		g, err = c.gauges()
		if err != nil {
			why = err.Error()
			return false
		}
		st, err := readStatus(c.dir)
		if err != nil {
			why = err.Error()
			return false
		}
		why = fmt.Sprintf("%v; agent %+v", g, st)
		return st.OpenStreams == 0 && len(st.Sessions) == 1 && st.Sessions[0].State == "connected" &&
			g.streams == 0 && g.proxies == 0 && ok(g)
	})
	if !done {
		return g, fmt.Errorf("not within %v: %s", limit, why)
	}
	return g, nil
}

func near(got, want, slack int) bool { return got >= want-slack && got <= want+slack }

// countFDs is fdCount without a test to fail.
func countFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

// scrape reads the unlabelled samples of a Prometheus text page.
func scrape(url string) (map[string]float64, error) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			m[name] = v
		}
	}
	return m, sc.Err()
}

// proxyPIDs are the `sandmux proxy --no-agent` processes still running.
func proxyPIDs() []int {
	return processes(func(pid int, args []string) bool {
		return len(args) > 2 && args[0] == sandmuxBin && args[1] == "proxy" && slices.Contains(args, "--no-agent") && !processGone(pid)
	})
}

// runJobs runs every job at once and returns their errors, in order.
func runJobs(jobs []*chaosJob) []error {
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() { errs[i] = j.run() })
	}
	wg.Wait()
	return errs
}

// roundFiles makes round r's directories; cleanup removes them, and
// they are removed at the round's end too, so a long run does not fill
// the disk.
func (c *chaosRig) roundFiles(r int) chaosFiles {
	c.t.Helper()
	f := chaosFiles{local: c.t.TempDir(), remote: filepath.Join(c.sshd.Dir, fmt.Sprintf("chaos-%d", r))}
	if err := os.MkdirAll(f.remote, 0o755); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = os.RemoveAll(f.remote) })
	return f
}

// remove deletes a round's files at its end.
func (f chaosFiles) remove() {
	_ = os.RemoveAll(f.local)
	_ = os.RemoveAll(f.remote)
}
