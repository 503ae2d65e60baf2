//go:build linux

package e2e

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestChaosShort is the slice of TestChaos that every `go test` runs: two
// `ssh sandbox cat` streams, one through the agent and one through a
// --no-agent proxy, live through one of each quick path fault (a cut at a
// random byte, in the redial's upgrade, in the resume handshake, two in a
// row, a storm of them, a black hole past the keepalive), each echoing
// every byte once and in order, and the agent and server are back at
// their baseline after. The faults' randomness has a fixed seed; each
// fault waits for both streams to be moving again after the last.
func TestChaosShort(t *testing.T) {
	t.Parallel()
	c := newChaosRig(t)
	sshEcho(testContext(t, time.Minute), t, c.sshd, c.proxy, c.env, "warm")
	c.settledAgent(t)
	base, err := c.gauges()
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, 2*time.Minute)
	rng := rand.New(rand.NewPCG(23, 1))
	f := c.roundFiles(0)
	stop := make(chan struct{})
	jobs := []*chaosJob{
		c.newJob(ctx, "stream", true, 1<<40, rng.Uint64(), f, 0),
		c.newJob(ctx, "stream", false, 1<<40, rng.Uint64(), f, 1),
	}
	for _, j := range jobs {
		j.stream.stop, j.stream.rate = stop, 1<<20
	}
	errs := make(chan []error, 1)
	go func() { errs <- runJobs(jobs) }()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-errs
	}()

	quick := []string{"cut-mid", "cut-upgrade", "cut-hello", "double", "storm", "freeze"}
	log := &faultLog{}
	start := time.Now()
	for _, name := range quick {
		// Both streams move again (the session of each resumed) before
		// the next fault.
		var marks []int64
		for _, j := range jobs {
			marks = append(marks, j.progress()+256<<10)
		}
		awaitEach(t, jobs, marks)
		i := slices.IndexFunc(pathFaults, func(f pathFault) bool { return f.name == name })
		log.add(time.Since(start), name, pathFaults[i].do(c.path, rng, stop))
	}
	c.path.CutAt()
	var marks []int64
	for _, j := range jobs {
		marks = append(marks, j.progress()+256<<10)
	}
	awaitEach(t, jobs, marks)
	close(stop)
	for _, err := range <-errs {
		if err != nil {
			t.Error(err)
		}
	}
	errs <- nil
	var moved int64
	for _, j := range jobs {
		moved += 2 * j.progress()
	}
	t.Logf("%d MiB echoed through %v in %v\n%s", moved>>20, log.counts, time.Since(start).Round(time.Millisecond), log)
	if _, err := c.settle(base); err != nil {
		t.Error(err)
	}
}

// awaitEach waits until each job has moved its mark's bytes.
func awaitEach(t *testing.T, jobs []*chaosJob, marks []int64) {
	t.Helper()
	waitFor(t, 30*time.Second, "both streams to move on", func() (bool, string) {
		for i, j := range jobs {
			if j.progress() < marks[i] {
				return false, fmt.Sprintf("%s at %d, want %d", j.name, j.progress(), marks[i])
			}
		}
		return true, ""
	})
}
