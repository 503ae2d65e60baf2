//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sandmux/sandmux/internal/netem"
)

// cutPeer names scenario 3's rows for scp through the agent while the
// path to the server is cut every CutEvery.
func cutPeer(e *env) string { return fmt.Sprintf("sandmux agent, cut every %v", e.s.CutEvery) }

// openCutRig is a loopback sshRig whose agent reaches the server through
// a fault proxy with no delay: the cuts are all it adds.
func (e *env) openCutRig() (*sshRig, *netem.Proxy, error) {
	rig, err := e.openSSHRig(loopback())
	if err != nil {
		return nil, nil, err
	}
	path, err := netem.Start(netem.Config{Target: rig.tun.srv.Addr})
	if err != nil {
		rig.close()
		return nil, nil, err
	}
	e.mu.Lock()
	e.links = append(e.links, path)
	e.mu.Unlock()
	rig.tun.url = "ws://" + path.Addr()
	return rig, path, nil
}

// scpCuts measures cases (upload, download on loopback) for cutPeer: each
// scp must finish byte-exact on the session it started on.
func scpCuts(e *env, t *table, cases []string, f scpFiles) {
	name := cutPeer(e)
	rig, path, err := e.openCutRig()
	if err == nil {
		defer rig.close()
		err = rig.warmUp([]peer{peerAgent})
	}
	var before sessionStatus
	if err == nil {
		before, err = rig.settled()
	}
	if err == nil && !before.Resumable {
		err = errors.New("the agent's session is not resumable, so a cut would end the scp")
	}
	if err != nil {
		for _, c := range cases {
			t.named(c, name).fail(err)
		}
		return
	}
	for rep := range e.s.ScpReps {
		for i, d := range []string{dirUp, dirDown} {
			r := t.named(cases[i], name)
			if r.Error != "" || e.ctx.Err() != nil {
				continue
			}
			dur, cuts, err := rig.scpCut(d, f, path, e.s.CutEvery)
			var after sessionStatus
			if err == nil {
				after, err = rig.settled()
			}
			if err == nil && after.Reconnects != before.Reconnects {
				err = fmt.Errorf("the agent redialled a new session (%d reconnects) instead of resuming", after.Reconnects-before.Reconnects)
			}
			v := mibps(f.size, dur)
			record(r, v, err)
			if err == nil {
				r.extra("cuts", float64(cuts)+r.Extra["cuts"])
				r.extra("resumes", float64(after.Resumes-before.Resumes)+r.Extra["resumes"])
				r.extra("replayed_bytes", float64(after.Replayed-before.Replayed)+r.Extra["replayed_bytes"])
			}
			if err != nil {
				// Count the next copy from wherever this one left the session.
				after, _ = rig.tun.agent.session()
			}
			before = after
			e.progress("   %-28s %-20s rep %d/%d: %s, %d cuts", cases[i], name, rep+1, e.s.ScpReps, fmtResult(v, "MiB/s", err), cuts)
		}
	}
}

// cutFigures adds the cut rows' counts to their figures.
func cutFigures(e *env, t *table, cases []string) {
	for _, c := range cases {
		r := t.named(c, cutPeer(e))
		if r.Error != "" {
			continue
		}
		x := r.Extra
		r.Figure += fmt.Sprintf("; %.0f cuts, %.0f resumes, agent replayed %s; byte-exact", x["cuts"], x["resumes"], bytesName(int64(x["replayed_bytes"])))
	}
	e.note("scp (scenario 3), %q: scp through the agent while a fault proxy between the agent and `sandmux server` resets "+
		"the WebSocket (RST both ways) every %v, the first half that into each scp; the copy must resume on the same session "+
		"and arrive byte-exact (CRC-32C). The figure includes the stalls; its ratio is to the uncut agent. "+
		"Cuts count resets that hit a live connection; resumes and bytes replayed are the agent's own counts "+
		"(the server's replays, most of a download's, are not among them).", cutPeer(e), e.s.CutEvery)
}

// bytesName is sizeName that also says what a count below 1 KiB is.
func bytesName(n int64) string {
	if n < kib {
		return fmt.Sprintf("%d B", n)
	}
	return sizeName(n)
}

// settled waits for the agent's session to be connected, not resuming,
// and returns its status: a cut just before an scp ended may still be
// being resumed.
func (r *sshRig) settled() (sessionStatus, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := r.tun.agent.session()
		if err == nil && s.State == "connected" {
			return s, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("the agent's session is %s, not connected, 30 s after the scp", s.State)
			}
			return s, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scpCut runs one scp of f through the agent while path is cut every
// interval, and reports how many cuts reset a live connection.
func (r *sshRig) scpCut(dir string, f scpFiles, path *netem.Proxy, every time.Duration) (time.Duration, int, error) {
	_ = os.Remove(f.dst)
	defer os.Remove(f.dst)
	c := startCutter(path, every)
	d, err := r.scpCopy(peerAgent, dir, f)
	cuts := c.stop()
	if err != nil {
		return 0, cuts, err
	}
	return d, cuts, f.verify()
}

// cutter calls Cut on a proxy at a fixed interval until stopped.
type cutter struct {
	quit chan struct{}
	done chan struct{}
	cuts int
}

// startCutter cuts p every interval, the first time half an interval in:
// a copy shorter than the interval (a fast loopback scp) is still cut.
func startCutter(p *netem.Proxy, every time.Duration) *cutter {
	c := &cutter{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		next := time.NewTimer(every / 2)
		defer next.Stop()
		for {
			select {
			case <-c.quit:
				return
			case <-next.C:
				next.Reset(every)
				// A tick that finds the agent between WebSockets cuts
				// nothing and is not counted.
				if p.Cut() > 0 {
					c.cuts++
				}
			}
		}
	}()
	return c
}

// stop ends the cutting and returns the number of cuts.
func (c *cutter) stop() int {
	close(c.quit)
	<-c.done
	return c.cuts
}
