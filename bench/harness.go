//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Settings are a run's sizes and counts; presets live in main.go.
type Settings struct {
	BulkSize   int64 `json:"bulk_bytes"`  // 1: per transfer
	Reps       int   `json:"reps"`        // repetitions of 1-3
	ParStreams int   `json:"par_streams"` // 2
	ParSize    int64 `json:"par_bytes"`   // 2: per stream
	ScpSize    int64 `json:"scp_bytes"`   // 3
	ScpReps    int   `json:"scp_reps"`    // 3 (scp at 50 ms is slow)
	// ScpLoopReps is how many times each of the peers copies on
	// loopback in scenario 3, in the reverse order every other time: on
	// loopback scp is CPU-bound and a copy can run slower for the one
	// before it, which a fixed order would charge to the same peer.
	ScpLoopReps  int           `json:"scp_loop_reps"`
	SetupRuns    int           `json:"setup_runs"`    // 4
	EchoSamples  int           `json:"echo_samples"`  // 5
	EchoGap      time.Duration `json:"echo_gap_ns"`   // 5: pause between round trips
	LoadStreams  int           `json:"load_streams"`  // 5
	IdleStreams  int           `json:"idle_streams"`  // 6: in-process streams on one session
	ProxyStreams int           `json:"proxy_streams"` // 6: proxies through the agent
	IdleSessions int           `json:"idle_sessions"` // 6
	OneWayDelay  time.Duration `json:"one_way_delay_ns"`
	// LinkRate adds scenario 1 rows over a link of this many bytes per
	// second each way at OneWayDelay, LinkBulkSize per transfer; 0 leaves
	// them out.
	LinkRate     int64 `json:"link_rate_bytes_per_s"`
	LinkBulkSize int64 `json:"link_bulk_bytes"`
	// Cuts is how many times scenario 3's cut rows reset the agent's
	// WebSocket during each copy, at even fractions of the bytes.
	Cuts int `json:"cuts_per_copy"`
	// SCPExtras adds scenario 3's rows beyond the peers: scp to
	// the embedded SSH server, and through the agent with cuts.
	SCPExtras bool  `json:"scp_extras"`
	CostSize  int64 `json:"cost_bytes"` // 8: per transfer
	CostReps  int   `json:"cost_reps"`  // 8: per mode
	RRSize    int64 `json:"rr_bytes"`   // 9: answered per run
	RRReps    int   `json:"rr_reps"`    // 9: runs per peer, alternating
	// Only restricts the run to these scenario numbers (empty: all).
	Only []int `json:"only,omitempty"`
}

// Options configure run.
type Options struct {
	Mode     string // full, quick or tiny: a label for the report
	Settings Settings
	// Bin is a sandmux binary to use; empty builds one from Root.
	Bin string
	// Root is the module root (where go.mod is).
	Root string
	// Progress receives one line per measurement.
	Progress io.Writer
	// Profile, when set, is a directory for in-process CPU profiles.
	Profile string
}

func (o Options) wants(id int) bool {
	if len(o.Settings.Only) == 0 {
		return true
	}
	for _, x := range o.Settings.Only {
		if x == id {
			return true
		}
	}
	return false
}

// env is what every scenario shares: the binary, a work directory, the Go
// target and the payload.
type env struct {
	ctx        context.Context
	opts       Options
	s          Settings
	bin        string
	work       string
	log        io.Writer
	target     *target
	payload    []byte // incompressible, written cyclically by uploads
	websocat   string // path, when on PATH
	serverHelp string // `sandmux server --help`, read once
	chisel     string

	mu     sync.Mutex
	links  []io.Closer // delay lines and TLS fronts
	agents []*agentDir
	notes  []string
	sshd   *sshd
	sshErr error
	sshOK  bool

	// cpu holds scenario 1's loopback-upload CPU figures for scenario 7.
	cpu map[peer][]cpuSample
	// faults counts client processes that failed after a complete
	// transfer, by peer and message.
	faults     map[string]int
	faultOrder []string
}

// cpuSample is the CPU time each process spent on one transfer.
type cpuSample struct {
	bytes                int64
	proxy, agent, server time.Duration
	// switches counts the context switches of all three processes.
	switches int64
}

// minus subtracts a baseline, never going below zero (the clock ticks are
// 10 ms, so a small figure minus a noisy baseline could).
func (s cpuSample) minus(b cpuSample) cpuSample {
	sub := func(x, y time.Duration) time.Duration { return max(x-y, 0) }
	return cpuSample{bytes: s.bytes, proxy: sub(s.proxy, b.proxy), agent: sub(s.agent, b.agent), server: sub(s.server, b.server),
		switches: max(s.switches-b.switches, 0)}
}

func (e *env) progress(format string, args ...any) {
	fmt.Fprintf(e.log, format+"\n", args...)
}

func (e *env) note(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.notes = append(e.notes, fmt.Sprintf(format, args...))
}

// childEnv is the environment of every process the bench starts. SHELL is
// /bin/sh so that the shell ssh runs a ProxyCommand through is cheap and
// reads no rc file.
func (e *env) childEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SHELL=") || strings.HasPrefix(kv, "SANDMUX_") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "SHELL=/bin/sh")
}

// run measures every selected scenario and returns the report. A scenario
// that fails yields rows carrying its error; run fails only when the
// shared set-up does.
func run(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	rep := &Report{Mode: o.Mode, Started: start, Settings: o.Settings, Host: hostInfo(o.Root)}
	e, err := newEnv(ctx, o)
	if err != nil {
		return nil, err
	}
	defer e.close()
	if e.websocat == "" {
		e.note("websocat not on PATH: skipped")
	}
	if e.chisel == "" {
		e.note("chisel not on PATH: skipped")
	}
	for _, sc := range scenarios {
		if !o.wants(sc.id) {
			continue
		}
		if ctx.Err() != nil {
			rep.Rows = append(rep.Rows, &Row{Scenario: sc.id, Name: sc.name, Case: "-", Peer: "-", Error: "interrupted"})
			continue
		}
		e.progress("== %d %s", sc.id, sc.name)
		t0 := time.Now()
		rows := sc.run(e)
		e.closeLinks()
		for _, r := range rows {
			r.Scenario, r.Name = sc.id, sc.name
		}
		if len(rows) == 0 {
			rows = []*Row{{Scenario: sc.id, Name: sc.name, Case: "-", Peer: "-", Error: "produced no rows"}}
		}
		rep.Rows = append(rep.Rows, rows...)
		e.progress("   (%d s)", int(time.Since(t0).Seconds()))
	}
	if e.sshd != nil {
		rep.Host.OpenSSH = opensshVersion()
	}
	for _, k := range e.faultOrder {
		e.note("FAULT (figure kept, the data had all arrived): %s — %d time(s)", k, e.faults[k])
	}
	rep.Host.LoadEnd = loadAvg()
	if busy := max(rep.Host.LoadStart, rep.Host.LoadEnd); busy > 0.5*float64(rep.Host.CPUs) {
		e.note("the machine was busy (1-minute load average %.1f at start, %.1f at end, on %d CPUs): figures are noisy", rep.Host.LoadStart, rep.Host.LoadEnd, rep.Host.CPUs)
	}
	rep.Notes = append(rep.Notes, e.notes...)
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

func newEnv(ctx context.Context, o Options) (*env, error) {
	work, err := os.MkdirTemp("", "smxb-work")
	if err != nil {
		return nil, err
	}
	e := &env{ctx: ctx, opts: o, s: o.Settings, work: work, log: o.Progress, cpu: map[peer][]cpuSample{}, faults: map[string]int{}}
	if e.log == nil {
		e.log = io.Discard
	}
	fail := func(err error) (*env, error) {
		e.close()
		return nil, err
	}
	e.bin = o.Bin
	if e.bin == "" {
		e.bin = filepath.Join(work, "sandmux")
		e.progress("building sandmux (CGO_ENABLED=0) into %s", e.bin)
		if err := buildBinary(ctx, o.Root, e.bin); err != nil {
			return fail(err)
		}
	}
	e.payload = make([]byte, ioBufSize)
	rand.NewChaCha8([32]byte{'s', 'a', 'n', 'd', 'm', 'u', 'x'}).Read(e.payload)
	if e.target, err = startTarget(e.payload); err != nil {
		return fail(err)
	}
	e.websocat, _ = exec.LookPath("websocat")
	e.chisel, _ = exec.LookPath("chisel")
	return e, nil
}

// otherPeers are the third-party tunnels found on PATH.
func (e *env) otherPeers() []peer {
	var ps []peer
	if e.websocat != "" {
		ps = append(ps, peerWebsocat)
	}
	if e.chisel != "" {
		ps = append(ps, peerChisel)
	}
	return ps
}

// close stops everything the run started and removes its files.
func (e *env) close() {
	e.closeLinks()
	for _, a := range e.agents {
		if err := a.stop(); err != nil {
			e.progress("warning: %v", err)
		}
	}
	e.agents = nil
	if e.sshd != nil {
		if err := e.sshd.Close(); err != nil {
			e.progress("warning: sshd: %v", err)
		}
		e.sshd = nil
	}
	if e.target != nil {
		e.target.Close()
	}
	_ = os.RemoveAll(e.work)
}

// getSSHD starts the shared sshd on first use; a missing sshd is reported
// as errSkipped (or, under CI=true, as a failure) to every scenario asking.
func (e *env) getSSHD() (*sshd, error) {
	if e.sshOK || e.sshErr != nil {
		return e.sshd, e.sshErr
	}
	e.sshd, e.sshErr = startSSHD(e.log)
	e.sshOK = e.sshErr == nil
	if e.sshOK {
		e.note("sshd runs with SetEnv HOME=<empty dir>, so the login shell (bash, as root) reads no ~/.bashrc: " +
			"here that file runs `pyenv init`, ~1 s of CPU per ssh command, which would swamp every ssh figure. " +
			"Key exchange, public-key auth, the session channel and exec through the shell are unchanged. " +
			"ssh runs ProxyCommand through SHELL=/bin/sh.")
	}
	return e.sshd, e.sshErr
}

// buildTags are the Makefile's TAGS, so the bench measures the binary
// `make build` ships.
const buildTags = "urfave_cli_no_docs"

func buildBinary(ctx context.Context, root, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", buildTags, "-o", out, "./cmd/sandmux")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/sandmux: %w\n%s", err, buf.String())
	}
	return nil
}

// moduleRoot finds the directory of go.mod from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory; run from the sandmux checkout")
		}
		dir = parent
	}
}

func hostInfo(root string) HostInfo {
	h := HostInfo{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	cmd := exec.Command("git", "describe", "--always", "--dirty")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		h.Commit = strings.TrimSpace(string(out))
	}
	return h
}

// loadAvg is the 1-minute load average.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func opensshVersion() string {
	out, err := exec.Command("ssh", "-V").CombinedOutput()
	if err != nil {
		return ""
	}
	v, _, _ := strings.Cut(strings.TrimSpace(string(out)), ",")
	return v
}

// scenario is one numbered item of issue 4's list.
type scenario struct {
	id   int
	name string
	run  func(*env) []*Row
}

var scenarios = []scenario{
	{1, "bulk", scenarioBulk},
	{2, "parallel", scenarioParallel},
	{3, "scp", scenarioSCP},
	{4, "setup", scenarioSetup},
	{5, "latency under load", scenarioLatency},
	{6, "memory", scenarioMemory},
	{7, "CPU per GiB", scenarioCPU},
	{8, "resume cost", scenarioResumeCost},
	{9, "request/response", scenarioRR},
}
