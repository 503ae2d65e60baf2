//go:build linux

package e2e

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// suspendGrace is the server's --resume-grace in the suspension tests:
// a suspension outlasts it and the 1 s keepalive.
const suspendGrace = 3 * time.Second

// TestCtrlZKeepsTheSession: Ctrl-Z on an scp download and on an
// interactive `ssh sandbox cat`, as a shell does it (SIGTSTP to the job's
// process group, which holds ssh and its ProxyCommand), for longer than
// the keepalive and the server's grace, then `fg` (SIGCONT): ssh's
// stopped pipes hold the streams still, the session stays alive (no
// WebSocket lost, nothing to resume), and both complete byte-exact with
// nothing on stderr. Through the agent the proxy only waits; through
// --no-agent it holds the session, and a proxy stopped with its job
// (as it was) lost it past the grace: "could not be resumed" after fg.
func TestCtrlZKeepsTheSession(t *testing.T) {
	for _, agent := range []bool{true, false} {
		t.Run(fmt.Sprintf("agent=%v", agent), func(t *testing.T) {
			t.Parallel()
			c := newChaosRigGrace(t, suspendGrace, "scp")
			sshEcho(testContext(t, time.Minute), t, c.sshd, c.proxy, c.env, "warm")
			c.settledAgent(t)
			base, err := c.gauges()
			if err != nil {
				t.Fatal(err)
			}
			f := c.roundFiles(0)
			ctx := testContext(t, 3*time.Minute)
			stop := make(chan struct{})
			jobs := []*chaosJob{
				c.newJob(ctx, "scp-down", agent, 32<<20, 1, f, 0),
				c.newJob(ctx, "stream", agent, 1<<40, 2, f, 1),
			}
			// At 5 MB/s, so that the download is surely still running
			// when the suspension comes and after it.
			scp := jobs[0].cmd
			scp.Args = append([]string{scp.Args[0], "-l", "40000"}, scp.Args[1:]...)
			jobs[1].stream.stop, jobs[1].stream.rate = stop, 1<<20
			for _, j := range jobs {
				j.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
			}
			lost := c.srv.Count(logTransportLost)
			log := &faultLog{}
			errs, _ := runEnding(t, jobs, func() {
				suspendJobs(t, jobs, 2*time.Second+suspendGrace, log)
				close(stop)
			})
			t.Logf("%s", log)
			for i, err := range errs {
				if err != nil {
					t.Errorf("after Ctrl-Z and fg: %v", err)
				} else if s := jobs[i].stderr(); s != "" {
					t.Errorf("%s wrote %q to stderr, want nothing", jobs[i].name, s)
				}
			}
			if n := c.srv.Count(logTransportLost); n != lost {
				t.Errorf("the server lost %d WebSockets while the jobs were suspended, want none: the session must stay alive\n%s", n-lost, c.srv.Log())
			}
			if _, err := c.settle(base); err != nil {
				t.Error(err)
			}
		})
	}
}

// suspendJobs stops every job's process group as Ctrl-Z does (SIGTSTP),
// lets the suspension last d, checks that no job moved meanwhile, and
// continues them as fg does (SIGCONT).
func suspendJobs(t *testing.T, jobs []*chaosJob, d time.Duration, log *faultLog) {
	t.Helper()
	start := time.Now()
	for _, j := range jobs {
		signalGroup(t, j, syscall.SIGTSTP)
	}
	// A moment for bytes already in the pipes to land, then none may.
	sleepOrStop(d/2, nil)
	var marks []int64
	for _, j := range jobs {
		marks = append(marks, j.progress())
	}
	sleepOrStop(d-time.Since(start), nil)
	for i, j := range jobs {
		if p := j.progress(); p != marks[i] {
			t.Errorf("%s moved from %d to %d bytes while suspended", j.name, marks[i], p)
		}
		signalGroup(t, j, syscall.SIGCONT)
	}
	log.add(time.Since(start), "ctrl-z", fmt.Sprintf("%d jobs suspended for %v", len(jobs), time.Since(start).Round(time.Millisecond)))
}

// signalGroup sends sig to the process group that j's program leads.
func signalGroup(t *testing.T, j *chaosJob, sig syscall.Signal) {
	t.Helper()
	pid := j.process()
	if pid <= 1 {
		// kill(-0) and kill(-1) would signal this test's own group or
		// every process.
		t.Errorf("%v: %s has no process (pid %d)", sig, j.name, pid)
		return
	}
	if err := syscall.Kill(-pid, sig); err != nil {
		t.Errorf("%v to %s's process group: %v", sig, j.name, err)
	}
}
