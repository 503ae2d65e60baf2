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
// path to the server is cut Cuts times during each copy.
func cutPeer(e *env) string { return fmt.Sprintf("sandmux agent, %d cuts per copy", e.s.Cuts) }

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
			dur, cuts, err := rig.scpCut(d, f, path, e.s.Cuts)
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
		"the WebSocket (RST both ways) %d times in each copy, when the bytes it has carried reach each %s of the file "+
		"(netem.CutAt: the read that reaches a mark cuts, however fast the copy runs); the copy must resume on the same session "+
		"and arrive byte-exact (CRC-32C). The figure includes the stalls; its ratio is to the uncut agent. "+
		"Resumes and bytes replayed are the agent's own counts "+
		"(the server's replays, most of a download's, are not among them).", cutPeer(e), e.s.Cuts, fraction(e.s.Cuts+1))
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

// scpCut runs one scp of f through the agent while path is cut n times,
// at even fractions of the file's bytes, and reports how many cuts it made.
func (r *sshRig) scpCut(dir string, f scpFiles, path *netem.Proxy, n int) (time.Duration, int, error) {
	_ = os.Remove(f.dst)
	defer os.Remove(f.dst)
	base, before := path.Carried(), path.CutsAt()
	marks := make([]int64, n)
	for i := range marks {
		marks[i] = base + f.size*int64(i+1)/int64(n+1)
	}
	path.CutAt(marks...)
	d, err := r.scpCopy(peerAgent, dir, f)
	path.CutAt() // a mark the copy did not reach must not cut the next one
	cuts := int(path.CutsAt() - before)
	if err == nil && cuts < n {
		// ssh's own bytes come on top of the file's, so every mark is
		// reached unless the copy went round the proxy.
		err = fmt.Errorf("the copy ended after %d of %d cuts", cuts, n)
	}
	if err != nil {
		return 0, cuts, err
	}
	return d, cuts, f.verify()
}

// fraction names 1/n in words: "quarter" for 4.
func fraction(n int) string {
	switch n {
	case 2:
		return "half"
	case 3:
		return "third"
	case 4:
		return "quarter"
	}
	return fmt.Sprintf("1/%d", n)
}
