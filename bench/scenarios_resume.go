//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// ---------------------------------------------------------------------
// 8. What resumption's bookkeeping costs: the agent with resumable
// sessions (the default) against the same agent and server with them off.

// resumeMode is one side of scenario 8's comparison.
type resumeMode struct {
	name        string
	serverFlags []string
	proxyFlags  []string // passed on to the agent the first proxy starts
	resumable   bool     // what the agent's session must report
}

func resumeModes() []resumeMode {
	return []resumeMode{
		{name: "sandmux agent, resume on", resumable: true},
		{name: "sandmux agent, resume off", serverFlags: []string{"--resume-grace", "0"}, proxyFlags: []string{"--no-resume"}},
	}
}

func scenarioResumeCost(e *env) []*Row {
	t := newTable()
	modes := resumeModes()
	size := e.s.CostSize
	bulk := []string{fmt.Sprintf("%s %s, loopback", dirUp, sizeName(size)), fmt.Sprintf("%s %s, loopback", dirDown, sizeName(size))}
	scp := fmt.Sprintf("scp %s %s, loopback", dirUp, sizeName(size))
	for _, c := range append(bulk, scp) {
		for _, m := range modes {
			t.named(c, m.name)
		}
	}
	e.note("resume cost (scenario 8): the agent on loopback with resumable sessions (the default) against the same with "+
		"them off (`sandmux server --resume-grace 0`, `sandmux proxy --no-resume`), each on a server and agent of its own; "+
		"the two alternate, %d times each, and each figure is the median. CPU is all three sandmux processes, as in scenario 7.", e.s.CostReps)
	cpu := map[string][]cpuSample{}
	resumeBulk(e, t, bulk, modes, cpu)
	resumeSCP(e, t, scp, modes)
	for _, r := range t.rows {
		if r.Error == "" {
			r.setValue(median(r.Samples), "MiB/s")
			r.Figure = fmt.Sprintf("%.0f MiB/s", r.value())
		}
	}
	for _, c := range bulk {
		for _, m := range modes {
			r := t.named(c, m.name)
			if r.Error == "" && len(cpu[c+m.name]) > 0 {
				x := median(cpuPerGiB(cpu[c+m.name]))
				r.extra("cpu_s_per_gib", x)
				r.Figure += fmt.Sprintf(", %.2f CPU-s/GiB", x)
			}
		}
	}
	for _, c := range append(bulk, scp) {
		on, off := t.named(c, modes[0].name), t.named(c, modes[1].name)
		x := on.ratioTo(off)
		on.judge("≥ 0.95× resume off", x >= 0.95, x)
		if a, b := on.Extra["cpu_s_per_gib"], off.Extra["cpu_s_per_gib"]; a > 0 && b > 0 {
			on.extra("cpu_over_off", a/b)
			on.Figure += fmt.Sprintf(" (CPU %.2f× off)", a/b)
		}
	}
	return t.rows
}

// cpuPerGiB is each sample's CPU seconds per GiB, all processes together.
func cpuPerGiB(ss []cpuSample) []float64 {
	var xs []float64
	for _, s := range ss {
		xs = append(xs, (s.proxy+s.agent+s.server).Seconds()/(float64(s.bytes)/gib))
	}
	return xs
}

// alternate is the order of modes in repetition rep: reversed every other
// time, so a drift of the machine's speed favours neither.
func alternate(modes []resumeMode, rep int) []resumeMode {
	if rep%2 == 0 {
		return modes
	}
	return []resumeMode{modes[1], modes[0]}
}

// resumeBulk measures scenario 1's loopback transfers through each mode's
// agent, recording CPU samples by case and mode.
func resumeBulk(e *env, t *table, cases []string, modes []resumeMode, cpu map[string][]cpuSample) {
	tuns := map[string]*tunnel{}
	for _, m := range modes {
		tun, _, err := e.openTunnel(loopback(), e.target.Addr(), m.serverFlags...)
		if err == nil {
			defer tun.close()
			tun.agent.flags = m.proxyFlags
			err = e.warmUp(tun, []peer{peerAgent})
		}
		if err == nil {
			err = checkResumable(tun, m)
		}
		if err != nil {
			for _, c := range cases {
				t.named(c, m.name).fail(err)
			}
			continue
		}
		tuns[m.name] = tun
	}
	for rep := range e.s.CostReps {
		for i, dir := range []string{dirUp, dirDown} {
			for _, m := range alternate(modes, rep) {
				r := t.named(cases[i], m.name)
				tun := tuns[m.name]
				if tun == nil || r.Error != "" || e.ctx.Err() != nil {
					continue
				}
				d, s, err := e.bulkOnce(tun, "", peerAgent, dir, e.s.CostSize)
				v := mibps(e.s.CostSize, d)
				record(r, v, err)
				if err == nil {
					cpu[cases[i]+m.name] = append(cpu[cases[i]+m.name], s.minus(tun.baseCPU[peerAgent]))
				}
				e.progress("   %-24s %-26s rep %d/%d: %s", cases[i], m.name, rep+1, e.s.CostReps, fmtResult(v, "MiB/s", err))
			}
		}
	}
}

// resumeSCP measures a real scp upload through each mode's agent.
func resumeSCP(e *env, t *table, c string, modes []resumeMode) {
	rigs := map[string]*sshRig{}
	f := scpFiles{src: filepath.Join(e.work, "cost-src.bin"), dst: filepath.Join(e.work, "cost-dst.bin"), size: e.s.CostSize}
	defer os.Remove(f.src)
	_, err := e.getSSHD()
	if err == nil {
		f.sum, err = randomFile(f.src, f.size)
	}
	if err != nil {
		t.failCases(err, c)
		return
	}
	for _, m := range modes {
		rig, err := e.openSSHRig(loopback(), m.serverFlags...)
		if err == nil {
			defer rig.close()
			rig.tun.agent.flags = m.proxyFlags
			err = rig.warmUp([]peer{peerAgent})
		}
		if err == nil {
			err = checkResumable(rig.tun, m)
		}
		if err != nil {
			t.named(c, m.name).fail(err)
			continue
		}
		rigs[m.name] = rig
	}
	for rep := range e.s.CostReps {
		for _, m := range alternate(modes, rep) {
			r := t.named(c, m.name)
			rig := rigs[m.name]
			if rig == nil || r.Error != "" || e.ctx.Err() != nil {
				continue
			}
			d, err := rig.scpOnce(peerAgent, dirUp, f)
			v := mibps(f.size, d)
			record(r, v, err)
			e.progress("   %-24s %-26s rep %d/%d: %s", c, m.name, rep+1, e.s.CostReps, fmtResult(v, "MiB/s", err))
		}
	}
}

// checkResumable makes sure a mode is what it claims: a comparison with
// resumption silently on at both sides would show no cost at all.
func checkResumable(tun *tunnel, m resumeMode) error {
	s, err := tun.agent.session()
	if err != nil {
		return err
	}
	if s.Resumable != m.resumable {
		return fmt.Errorf("%s: the agent's session reports resumable=%v", m.name, s.Resumable)
	}
	return nil
}
