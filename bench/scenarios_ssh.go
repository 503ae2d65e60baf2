//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// sshRig is sshd (or the embedded SSH server) behind a sandmux server,
// over one network.
type sshRig struct {
	e       *env
	sshd    *sshd // its client key logs in to the embedded server too
	tun     *tunnel
	sshPort int // the port direct ssh dials: sshd's, or its delay line's
	// knownHosts, when set, replaces sshd's pinned host key: the embedded
	// server has a key of its own.
	knownHosts string
}

func (e *env) openSSHRig(n network, serverFlags ...string) (*sshRig, error) {
	s, err := e.getSSHD()
	if err != nil {
		return nil, err
	}
	tun, directAddr, err := e.openTunnel(n, s.Addr, serverFlags...)
	if err != nil {
		return nil, err
	}
	_, portStr, _ := strings.Cut(directAddr, ":")
	port, err := strconv.Atoi(portStr)
	if err != nil {
		tun.close()
		return nil, err
	}
	return &sshRig{e: e, sshd: s, tun: tun, sshPort: port}, nil
}

func (r *sshRig) close() { r.tun.close() }

// dest returns the OpenSSH options and host name for peer p: direct ssh
// connects to 127.0.0.1 at sshPort, every other peer through a
// ProxyCommand.
func (r *sshRig) dest(p peer) ([]string, string, error) {
	if p == peerDirect {
		opts := r.sshd.ClientOptions("")
		for i, o := range opts {
			if strings.HasPrefix(o, "Port=") {
				opts[i] = "Port=" + strconv.Itoa(r.sshPort)
			}
		}
		return opts, "127.0.0.1", nil
	}
	name, args, err := r.e.clientCommand(p, r.tun)
	if err != nil {
		return nil, "", err
	}
	// The last argument is the host, which ssh fills in as %h.
	pc := strings.Join(append([]string{name}, args[:len(args)-1]...), " ") + " %h"
	if p == peerWebsocat || p == peerChisel {
		pc = strings.Join(append([]string{name}, args...), " ")
	}
	opts := r.sshd.ClientOptions(pc)
	if r.knownHosts != "" {
		// ssh keeps an option's first value, so replace it in place.
		for i, o := range opts {
			if strings.HasPrefix(o, "UserKnownHostsFile=") {
				opts[i] = "UserKnownHostsFile=" + r.knownHosts
			}
		}
	}
	return opts, "sandbox", nil
}

// command runs program (ssh or scp) for peer p with args after the options;
// "{host}" in args becomes the destination host.
func (r *sshRig) command(ctx context.Context, program string, p peer, extra []string, args ...string) (*exec.Cmd, error) {
	opts, host, err := r.dest(p)
	if err != nil {
		return nil, err
	}
	all := append(opts, extra...)
	for _, a := range args {
		all = append(all, strings.ReplaceAll(a, "{host}", host))
	}
	cmd := exec.CommandContext(ctx, program, all...)
	cmd.Env = r.e.childEnv()
	cmd.WaitDelay = 10 * time.Second
	return cmd, nil
}

// runTimed runs cmd and returns its wall time; its output is kept for the
// error.
func runTimed(cmd *exec.Cmd) (time.Duration, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %w: %s", filepath.Base(cmd.Path), err, strings.TrimSpace(out.String()))
	}
	return d, nil
}

// sshTrue runs `ssh HOST true` for p.
func (r *sshRig) sshTrue(p peer) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(r.e.ctx, 2*time.Minute)
	defer cancel()
	cmd, err := r.command(ctx, "ssh", p, nil, "{host}", "true")
	if err != nil {
		return 0, err
	}
	return runTimed(cmd)
}

// warmUp runs one ssh through each tunnelled peer, which starts the agent
// and its session.
func (r *sshRig) warmUp(peers []peer) error {
	for _, p := range peers {
		if !p.tunnelled() {
			continue
		}
		if _, err := r.sshTrue(p); err != nil {
			return fmt.Errorf("warm-up %v: %w", p, err)
		}
	}
	return r.tun.srv.alive()
}

// ---------------------------------------------------------------------
// 3. Real scp.

func sshPeers(e *env) []peer {
	return append([]peer{peerDirect, peerRawWS, peerNoAgent, peerAgent}, e.otherPeers()...)
}

func scenarioSCP(e *env) []*Row {
	t := newTable()
	peers := sshPeers(e)
	nets := []network{loopback(), wan(e.s.OneWayDelay)}
	var cases []string
	for _, n := range nets {
		for _, d := range []string{dirUp, dirDown} {
			c := fmt.Sprintf("%s %s, %s", d, sizeName(e.s.ScpSize), n.Name)
			cases = append(cases, c)
			for _, p := range peers {
				t.row(c, p)
			}
			if e.s.SCPExtras {
				t.named(c, embeddedPeer)
				if n.Delay == 0 {
					t.named(c, cutPeer(e))
				}
			}
		}
	}
	if _, err := e.getSSHD(); err != nil {
		t.failCases(err, cases...)
		return t.rows
	}
	dir := filepath.Join(e.work, "scp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.failCases(err, cases...)
		return t.rows
	}
	defer os.RemoveAll(dir)
	f := scpFiles{src: filepath.Join(dir, "src.bin"), dst: filepath.Join(dir, "dst.bin"), size: e.s.ScpSize}
	var err error
	if f.sum, err = randomFile(f.src, f.size); err != nil {
		t.failCases(err, cases...)
		return t.rows
	}
	for ni, n := range nets {
		func() {
			rig, err := e.openSSHRig(n)
			if err == nil {
				defer rig.close()
				err = rig.warmUp(peers)
			}
			if err != nil {
				t.failAll(err, cases[2*ni:2*ni+2], peers)
				return
			}
			reps := e.s.ScpReps
			if n.Delay == 0 {
				reps = e.s.ScpLoopReps
			}
			for rep := range reps {
				order := peers
				if rep%2 == 1 {
					order = slices.Clone(peers)
					slices.Reverse(order)
				}
				for di, d := range []string{dirUp, dirDown} {
					c := cases[2*ni+di]
					for _, p := range order {
						r := t.row(c, p)
						if r.Error != "" || e.ctx.Err() != nil {
							continue
						}
						dur, err := rig.scpOnce(p, d, f)
						v := mibps(e.s.ScpSize, dur)
						record(r, v, err)
						e.progress("   %-28s %-20s rep %d/%d: %s", c, p, rep+1, reps, fmtResult(v, "MiB/s", err))
					}
				}
			}
		}()
	}
	if e.s.ScpLoopReps > 1 {
		e.note("scp (scenario 3) on loopback: each of the %d peers above copies %d times each way, in the reverse order every other time, "+
			"and the figure is the median: scp on loopback is CPU-bound, and a fixed order would charge whatever the copy before leaves behind to the same peer every run.",
			len(peers), e.s.ScpLoopReps)
	}
	if e.s.SCPExtras {
		for ni, n := range nets {
			scpEmbedded(e, t, n, cases[2*ni:2*ni+2], f)
		}
		scpCuts(e, t, cases[:2], f)
	}
	for _, r := range t.rows {
		if r.Error == "" {
			r.setValue(median(r.Samples), "MiB/s")
			r.Figure = fmt.Sprintf("%.0f MiB/s", r.value())
		}
	}
	if e.s.SCPExtras {
		e.note("scp (scenario 3), %q: scp through the agent to `sandmux server --ssh embedded`, whose in-process SSH server "+
			"answers scp's SFTP itself, no sshd; its ratios are to direct ssh to OpenSSH's sshd and to the agent in front of sshd, "+
			"with the same file, size and network.", embeddedPeer)
		cutFigures(e, t, cases[:2])
	}
	for ci, c := range cases {
		loop := ci < 2
		b := t.get(c, peerDirect)
		if e.s.SCPExtras {
			emb := t.named(c, embeddedPeer)
			emb.ratioTo(b)
			emb.ratioTo(t.get(c, peerAgent))
			if loop {
				t.named(c, cutPeer(e)).ratioTo(t.get(c, peerAgent))
			}
		}
		for _, p := range peers[1:] {
			r := t.get(c, p)
			x := r.ratioTo(b)
			// The targets: 0.90× direct on loopback, 0.95× at 50 ms.
			want, wantName := 0.9, "≥ 0.90× ssh direct"
			if !loop {
				want, wantName = 0.95, "≥ 0.95× ssh direct"
			}
			switch p {
			case peerNoAgent:
				r.judge(wantName, x >= want, x)
			case peerAgent:
				y := r.ratioTo(t.get(c, peerNoAgent))
				r.judge(wantName+"; ≥ 0.95× --no-agent", x >= want && y >= 0.95, x, y)
			}
		}
	}
	return t.rows
}

// scpFiles is scenario 3's source file and where its copies go; both are
// on this machine, the "remote" side too.
type scpFiles struct {
	src, dst string
	sum      uint32 // CRC-32C of src
	size     int64
}

// scpOnce copies f.src to f.dst (upload: local to "remote"; download: the
// reverse) and checks the copy's checksum outside the timed part.
func (r *sshRig) scpOnce(p peer, dir string, f scpFiles) (time.Duration, error) {
	_ = os.Remove(f.dst)
	defer os.Remove(f.dst)
	d, err := r.scpCopy(p, dir, f)
	if err != nil {
		return 0, err
	}
	return d, f.verify()
}

// scpCopy runs one timed scp of f for peer p.
func (r *sshRig) scpCopy(p peer, dir string, f scpFiles) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(r.e.ctx, time.Minute+time.Duration(f.size/mib)*time.Second)
	defer cancel()
	from, to := f.src, "{host}:"+f.dst
	if dir == dirDown {
		from, to = "{host}:"+f.src, f.dst
	}
	cmd, err := r.command(ctx, "scp", p, []string{"-o", "Compression=no", "-q"}, from, to)
	if err != nil {
		return 0, err
	}
	return runTimed(cmd)
}

// verify checks that the copy is byte-exact.
func (f scpFiles) verify() error {
	got, n, err := fileCRC(f.dst)
	if err != nil {
		return err
	}
	if n != f.size || got != f.sum {
		return fmt.Errorf("copy is corrupt: %d bytes, crc32c %08x, want %d bytes, %08x", n, got, f.size, f.sum)
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// randomFile writes size incompressible bytes to path and returns their
// CRC-32C (fast enough to check every copy).
func randomFile(path string, size int64) (uint32, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	h := crc32.New(castagnoli)
	src := rand.NewChaCha8([32]byte{'s', 'c', 'p'})
	_, err = io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(src, size), make([]byte, 1<<20))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return h.Sum32(), err
}

func fileCRC(path string) (uint32, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	h := crc32.New(castagnoli)
	n, err := io.CopyBuffer(h, f, make([]byte, 1<<20))
	return h.Sum32(), n, err
}

func sizeName(n int64) string {
	switch {
	case n >= gib && n%gib == 0:
		return fmt.Sprintf("%d GiB", n/gib)
	case n >= mib:
		return fmt.Sprintf("%d MiB", n/mib)
	}
	return fmt.Sprintf("%d KiB", n/kib)
}

// ---------------------------------------------------------------------
// 4. Connection set-up.

func scenarioSetup(e *env) []*Row {
	t := newTable()
	peers := []peer{peerDirect, peerRawWS, peerNoAgent, peerAgent}
	n := wan(e.s.OneWayDelay)
	n.TLS = true
	c := fmt.Sprintf("ssh host true ×%d, %s, wss", e.s.SetupRuns, n.Name)
	for _, p := range peers {
		t.row(c, p)
	}
	e.note("setup (scenario 4): the delay line emulates TCP's handshake (netem.Config.Handshake), so the new TCP connection " +
		"of direct ssh, and the new WebSocket of --raw and --no-agent, pay the round trip a real path charges before the " +
		"server's first byte (2 RTT after connect instead of 0.5), while the agent's already-open session pays none. " +
		"The server accepts at the handshake's end, so sshd's start (fork and re-exec, ~20 ms) follows it on every path, " +
		"as on a real one. Each run ends when ssh's output pipe closes, which waits for its ProxyCommand too. " +
		"The tunnels use wss:// through a TLS front before the server (as E2B's edge terminates TLS for a sandbox port), " +
		"so each new WebSocket also pays a TLS 1.3 handshake (1 RTT, and its CPU); direct ssh has no TLS.")
	rig, err := e.openSSHRig(n)
	if err == nil {
		defer rig.close()
		err = rig.warmUp(peers)
	}
	if err != nil {
		t.failAll(err, []string{c}, peers)
		return t.rows
	}
	// Interleaved, so a slow moment of the machine hits every peer alike.
	for i := range e.s.SetupRuns {
		for _, p := range peers {
			r := t.row(c, p)
			if r.Error != "" || e.ctx.Err() != nil {
				continue
			}
			d, err := rig.sshTrue(p)
			record(r, ms(d), err)
			if i == 0 || err != nil {
				e.progress("   %-20s run %d: %s", p, i+1, fmtResult(ms(d), "ms", err))
			}
		}
	}
	for _, p := range peers {
		r := t.row(c, p)
		if r.Error != "" {
			continue
		}
		r.setValue(median(r.Samples), "ms")
		p90 := quantile(r.Samples, 0.9)
		r.extra("p90_ms", p90)
		r.Figure = fmt.Sprintf("median %.0f ms, p90 %.0f ms", r.value(), p90)
	}
	base := t.get(c, peerDirect)
	ws := t.get(c, peerRawWS)
	ws.ratioTo(base)
	t.get(c, peerNoAgent).ratioTo(base)
	a := t.get(c, peerAgent)
	x, y := a.ratioTo(base), a.ratioTo(ws)
	a.judge("≤ 1.0× ssh direct; ≤ 0.8× WS per conn", x <= 1.0 && y <= 0.8, x, y)
	return t.rows
}
