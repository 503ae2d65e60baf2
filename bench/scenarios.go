//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// table collects a scenario's rows in the order they are first asked for.
type table struct {
	rows  []*Row
	index map[string]*Row
}

func newTable() *table { return &table{index: map[string]*Row{}} }

func (t *table) row(cas string, p peer) *Row { return t.named(cas, p.String()) }

// named is row for a peer column that is not a peer (a process name).
func (t *table) named(cas, name string) *Row {
	k := cas + "\x00" + name
	if r, ok := t.index[k]; ok {
		return r
	}
	r := &Row{Case: cas, Peer: name}
	t.rows = append(t.rows, r)
	t.index[k] = r
	return r
}

// get returns the row if it exists (nil otherwise).
func (t *table) get(cas string, p peer) *Row { return t.index[cas+"\x00"+p.String()] }

// failAll marks every row of the given cases and peers as failed with err,
// for a set-up failure that leaves nothing to measure.
func (t *table) failAll(err error, cases []string, peers []peer) {
	for _, c := range cases {
		for _, p := range peers {
			if r := t.row(c, p); r.Error == "" {
				r.fail(err)
			}
		}
	}
}

// failCases marks every row of the given cases as failed with err, peers
// and named rows alike.
func (t *table) failCases(err error, cases ...string) {
	for _, r := range t.rows {
		if r.Error == "" && slices.Contains(cases, r.Case) {
			r.fail(err)
		}
	}
}

// record adds one sample to r unless r already failed.
func record(r *Row, v float64, err error) {
	if r.Error != "" {
		return
	}
	if err != nil {
		r.fail(err)
		r.Samples = nil
		return
	}
	r.Samples = append(r.Samples, v)
}

// ioDeadline bounds one transfer of size bytes generously (2 MiB/s plus a
// minute): it catches a hang, never a slow run.
func ioDeadline(size int64) time.Time {
	if size == endless {
		size = 0
	}
	return time.Now().Add(time.Minute + time.Duration(size/(2*mib))*time.Second)
}

// guard makes c give up at deadline or when the run is interrupted.
func (e *env) guard(c conn, deadline time.Time) func() {
	_ = c.SetDeadline(deadline)
	stop := context.AfterFunc(e.ctx, func() { _ = c.SetDeadline(time.Now()) })
	return func() { stop() }
}

const (
	dirUp   = "upload"
	dirDown = "download"
)

// ---------------------------------------------------------------------
// 1. Bulk: one stream each direction, loopback and WAN.

func bulkPeers(e *env) []peer {
	return append([]peer{peerRawTCP, peerRawWS, peerNoAgent, peerAgent}, e.otherPeers()...)
}

func scenarioBulk(e *env) []*Row {
	t := newTable()
	peers := bulkPeers(e)
	nets := []network{loopback(), wan(e.s.OneWayDelay)}
	if e.s.LinkRate > 0 {
		nets = append(nets, wanLink(e.s.OneWayDelay, e.s.LinkRate))
	}
	for _, n := range nets {
		bulkNet(e, t, n, peers)
	}
	e.note("WAN rows: internal/netem adds %v each way and terminates TCP on both sides with up to 64 MiB buffered per direction, "+
		"so raw TCP through it is not limited by its own window as one flow over a real %v path would be: "+
		"its figure is the path's capacity, the upper bound for any tunnel.", e.s.OneWayDelay, 2*e.s.OneWayDelay)
	if e.s.LinkRate > 0 {
		e.note("Rows at %v RTT, %s: the delay line also sends each direction through one link of that rate (bytes queue before it, as at a router), "+
			"%d MiB per transfer. Without it, the only limit at %v RTT is how fast each process moves bytes, "+
			"and a tunnel, which does more per byte than raw TCP, is CPU-bound on a small machine; "+
			"with it, the path is the limit, and a tunnel falls short of raw TCP only where its window or in-flight limit holds it back.",
			2*e.s.OneWayDelay, rateName(e.s.LinkRate), e.s.LinkBulkSize>>20, 2*e.s.OneWayDelay)
	}
	for _, r := range t.rows {
		if r.Error == "" {
			r.setValue(median(r.Samples), "MiB/s")
			r.Figure = fmt.Sprintf("%.0f MiB/s", r.value())
		}
	}
	for _, n := range nets {
		for _, d := range []string{dirUp, dirDown} {
			c := d + ", " + n.Name
			judgeThroughput(t, c, peerRawTCP, n.Delay > 0, "raw TCP")
		}
	}
	return t.rows
}

// judgeThroughput sets ratios to base and the throughput targets:
// sandmux within 5% of --no-agent for the agent everywhere, and ≥ 0.8× the
// baseline on the WAN (wanTarget) for both sandmux modes.
func judgeThroughput(t *table, c string, base peer, wanTarget bool, baseName string) {
	b := t.get(c, base)
	for _, p := range []peer{peerRawWS, peerWebsocat, peerChisel, peerNoAgent, peerAgent} {
		r := t.get(c, p)
		if r == nil {
			continue
		}
		x := r.ratioTo(b)
		switch p {
		case peerNoAgent:
			if wanTarget {
				r.judge("≥ 0.8× "+baseName, x >= 0.8, x)
			}
		case peerAgent:
			y := r.ratioTo(t.get(c, peerNoAgent))
			if wanTarget {
				r.judge("≥ 0.8× "+baseName+"; ≥ 0.95× --no-agent", x >= 0.8 && y >= 0.95, x, y)
			} else {
				r.judge("≥ 0.95× --no-agent", y >= 0.95, y)
			}
		}
	}
}

func bulkNet(e *env, t *table, n network, peers []peer) {
	cases := []string{dirUp + ", " + n.Name, dirDown + ", " + n.Name}
	for _, c := range cases {
		for _, p := range peers {
			t.row(c, p)
		}
	}
	tun, tcpAddr, err := e.openTunnel(n, e.target.Addr())
	if err != nil {
		t.failAll(err, cases, peers)
		return
	}
	defer tun.close()
	if err := e.warmUp(tun, peers); err != nil {
		t.failAll(err, cases, peers)
		return
	}
	size := e.s.BulkSize
	if n.Rate > 0 {
		size = e.s.LinkBulkSize
	}
	for rep := range e.s.Reps {
		for i, dir := range []string{dirUp, dirDown} {
			for _, p := range peers {
				r := t.row(cases[i], p)
				if r.Error != "" || e.ctx.Err() != nil {
					continue
				}
				d, cpu, err := e.bulkOnce(tun, tcpAddr, p, dir, size)
				v := mibps(size, d)
				record(r, v, err)
				e.progress("   %-9s %-22s %-20s rep %d/%d: %s", dir, n.Name, p, rep+1, e.s.Reps, fmtResult(v, "MiB/s", err))
				if err == nil && dir == dirUp && n.Delay == 0 {
					e.cpu[p] = append(e.cpu[p], cpu.minus(tun.baseCPU[p]))
				}
			}
		}
	}
}

func fmtResult(v float64, unit string, err error) string {
	if err != nil {
		return "error: " + oneLine(err.Error())
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}

// openTunnel starts a sandmux server in front of target, and the delay
// line for n in front of both it and target (for raw TCP). The returned
// address is how raw TCP reaches target over n.
func (e *env) openTunnel(n network, target string, serverFlags ...string) (*tunnel, string, error) {
	srv, err := e.startServer(target, serverFlags...)
	if err != nil {
		return nil, "", err
	}
	tun := &tunnel{e: e, srv: srv, target: target, baseCPU: map[peer]cpuSample{}}
	front, scheme := srv.Addr, "ws://"
	if n.TLS {
		f, err := startTLSFront(e.work, srv.Addr)
		if err != nil {
			tun.close()
			return nil, "", err
		}
		e.mu.Lock()
		e.links = append(e.links, f)
		e.mu.Unlock()
		front, scheme, tun.ca = f.Addr(), "wss://", f.caFile
	}
	wsAddr, err := e.via(n, front)
	if err != nil {
		tun.close()
		return nil, "", err
	}
	tun.url = scheme + wsAddr
	if e.chisel != "" {
		var addr string
		if tun.chisel, addr, err = e.startChisel(); err == nil {
			addr, err = e.via(n, addr)
		}
		if err != nil {
			tun.close()
			return nil, "", err
		}
		tun.chiselURL = "http://" + addr
	}
	tcpAddr, err := e.via(n, target)
	if err != nil {
		tun.close()
		return nil, "", err
	}
	if tun.agent, err = e.newAgentDir(); err != nil {
		tun.close()
		return nil, "", err
	}
	return tun, tcpAddr, nil
}

// warmTunnel adds t's rows for cases × peers, opens a loopback tunnel to
// the target and warms it up for peers; on failure every one of those
// rows fails and ok is false. The caller closes the tunnel.
func (e *env) warmTunnel(t *table, cases []string, peers []peer) (tun *tunnel, tcpAddr string, ok bool) {
	for _, c := range cases {
		for _, p := range peers {
			t.row(c, p)
		}
	}
	tun, tcpAddr, err := e.openTunnel(loopback(), e.target.Addr())
	if err != nil {
		t.failAll(err, cases, peers)
		return nil, "", false
	}
	if err := e.warmUp(tun, peers); err != nil {
		tun.close()
		t.failAll(err, cases, peers)
		return nil, "", false
	}
	return tun, tcpAddr, true
}

// dialPeer connects through peer p: for raw TCP straight to tcpAddr (the
// target, or its delay line), for the others through the tunnel.
func (t *tunnel) dialPeer(p peer, tcpAddr string) (conn, error) {
	if p == peerRawTCP {
		return dialTCP(tcpAddr)
	}
	return t.dial(p)
}

// close stops the tunnel's agent and server.
func (t *tunnel) close() {
	if t.agent != nil {
		if err := t.agent.stop(); err != nil {
			t.e.progress("   warning: %v", err)
		}
		t.e.mu.Lock()
		t.e.agents = slices.DeleteFunc(t.e.agents, func(a *agentDir) bool { return a == t.agent })
		t.e.mu.Unlock()
	}
	if t.srv != nil {
		if err := t.srv.Close(); err != nil {
			t.e.progress("   warning: %v", err)
		}
	}
	if t.chisel != nil {
		_ = t.chisel.Process.Signal(syscall.SIGTERM)
		_ = t.chisel.Wait()
	}
}

// warmUp moves 1 MiB through every tunnelled peer once, which starts the
// agent and its session so that no measurement includes them, and learns
// the agent's pid.
func (e *env) warmUp(tun *tunnel, peers []peer) error {
	for _, p := range peers {
		if !p.tunnelled() {
			continue
		}
		c, err := tun.dial(p)
		if err != nil {
			return fmt.Errorf("warm-up %v: %w", p, err)
		}
		stop := e.guard(c, ioDeadline(mib))
		_, err = upload(c, e.payload, mib)
		stop()
		if cerr := finish(c); err == nil && cerr != nil {
			e.teardownFault(p, cerr)
		}
		if err != nil {
			return fmt.Errorf("warm-up %v: %w", p, err)
		}
		// An empty connection costs what every connection costs (process
		// start, dial, stream open); scenario 7 subtracts it.
		base, err := e.emptyConnCPU(tun, p)
		if err != nil {
			return fmt.Errorf("warm-up %v: %w", p, err)
		}
		tun.baseCPU[p] = base
		if p == peerAgent {
			if _, err := tun.agent.Pid(); err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
		}
	}
	return tun.srv.alive()
}

// bulkOnce moves size bytes one way through peer p and returns the time and
// the CPU the tunnel's processes spent around it.
func (e *env) bulkOnce(tun *tunnel, tcpAddr string, p peer, dir string, size int64) (time.Duration, cpuSample, error) {
	cpu := cpuSample{bytes: size}
	if !p.tunnelled() {
		// Both ends are in this process: its CPU is the reference cost of
		// moving the bytes at all.
		t0 := selfCPU()
		c, err := dialTCP(tcpAddr)
		if err != nil {
			return 0, cpu, err
		}
		d, err := e.transfer(c, dir, size)
		_ = c.Close()
		cpu.proxy = selfCPU() - t0
		return d, cpu, err
	}
	meter := newCPUMeter(tun, p)
	c, err := tun.dial(p)
	if err != nil {
		return 0, cpu, err
	}
	d, err := e.transfer(c, dir, size)
	if cerr := finish(c); err == nil && cerr != nil {
		// The bytes were all delivered and counted: keep the figure and
		// report the fault in the notes.
		e.teardownFault(p, cerr)
	}
	if err == nil {
		err = tun.srv.alive()
	}
	cpu = meter.stop(c.(*proc), size)
	return d, cpu, err
}

// emptyConnCPU is the CPU an empty connection costs each process: the
// request, the acknowledgement and the close.
func (e *env) emptyConnCPU(tun *tunnel, p peer) (cpuSample, error) {
	meter := newCPUMeter(tun, p)
	c, err := tun.dial(p)
	if err != nil {
		return cpuSample{}, err
	}
	stop := e.guard(c, ioDeadline(0))
	err = request(c, modeUpload, 0)
	if err == nil {
		var cnt [8]byte
		_, err = io.ReadFull(c, cnt[:])
	}
	stop()
	if cerr := finish(c); err == nil && cerr != nil {
		e.teardownFault(p, cerr)
	}
	return meter.stop(c.(*proc), 0), err
}

// teardownFault records a client process that failed after its transfer
// had completed and been verified: a bug worth reporting, not a reason to
// drop the figure.
func (e *env) teardownFault(p peer, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := p.String() + ": " + oneLine(err.Error())
	if e.faults[k] == 0 {
		e.faultOrder = append(e.faultOrder, k)
	}
	e.faults[k]++
}

// transfer runs one timed upload or download on c.
func (e *env) transfer(c conn, dir string, size int64) (time.Duration, error) {
	stop := e.guard(c, ioDeadline(size))
	defer stop()
	if dir == dirUp {
		return upload(c, e.payload, size)
	}
	return download(c, size)
}

// cpuMeter reads the server's and agent's CPU time before and after a
// transfer; the client process's comes from its exit status.
type cpuMeter struct {
	tun               *tunnel
	agentPid          int
	server0, agent0   time.Duration
	switches0         int64
	serverOK, agentOK bool
}

func newCPUMeter(tun *tunnel, p peer) *cpuMeter {
	m := &cpuMeter{tun: tun}
	var err error
	m.server0, err = procCPU(tun.srv.Pid())
	m.serverOK = err == nil
	m.switches0, _ = procCtxSwitches(tun.srv.Pid())
	if p == peerAgent && tun.agent.pid != 0 {
		m.agentPid = tun.agent.pid
		m.agent0, err = procCPU(m.agentPid)
		m.agentOK = err == nil
		n, _ := procCtxSwitches(m.agentPid)
		m.switches0 += n
	}
	return m
}

func (m *cpuMeter) stop(pr *proc, size int64) cpuSample {
	s := cpuSample{bytes: size, proxy: pr.CPU(), switches: pr.ctxSwitches() - m.switches0}
	if m.serverOK {
		if t, err := procCPU(m.tun.srv.Pid()); err == nil {
			s.server = t - m.server0
		}
	}
	n, _ := procCtxSwitches(m.tun.srv.Pid())
	s.switches += n
	if m.agentOK {
		if t, err := procCPU(m.agentPid); err == nil {
			s.agent = t - m.agent0
		}
		n, _ := procCtxSwitches(m.agentPid)
		s.switches += n
	}
	return s
}

// ---------------------------------------------------------------------
// 2. Parallel: several streams at once.

func scenarioParallel(e *env) []*Row {
	t := newTable()
	peers := []peer{peerRawTCP, peerRawWS, peerAgent}
	for _, n := range []network{loopback(), wan(e.s.OneWayDelay)} {
		c := fmt.Sprintf("%d× upload, %s", e.s.ParStreams, n.Name)
		for _, p := range peers {
			t.row(c, p)
		}
		spreads := map[peer][]float64{}
		func() {
			tun, tcpAddr, err := e.openTunnel(n, e.target.Addr())
			if err != nil {
				t.failAll(err, []string{c}, peers)
				return
			}
			defer tun.close()
			if err := e.warmUp(tun, peers); err != nil {
				t.failAll(err, []string{c}, peers)
				return
			}
			for rep := range e.s.Reps {
				for _, p := range peers {
					r := t.row(c, p)
					if r.Error != "" || e.ctx.Err() != nil {
						continue
					}
					agg, spread, err := e.parallelOnce(tun, tcpAddr, p)
					record(r, agg, err)
					if err == nil {
						spreads[p] = append(spreads[p], spread)
					}
					e.progress("   %-22s %-20s rep %d/%d: %s, spread %.2f", c, p, rep+1, e.s.Reps, fmtResult(agg, "MiB/s", err), spread)
				}
			}
		}()
		for _, p := range peers {
			r := t.row(c, p)
			if r.Error != "" {
				continue
			}
			r.setValue(median(r.Samples), "MiB/s")
			sp := median(spreads[p])
			r.extra("spread_slowest_over_fastest", sp)
			r.Figure = fmt.Sprintf("%.0f MiB/s aggregate, spread %.2f", r.value(), sp)
		}
		base := t.get(c, peerRawTCP)
		t.get(c, peerRawWS).ratioTo(base)
		a := t.get(c, peerAgent)
		a.ratioTo(base)
		a.ratioTo(t.get(c, peerRawWS))
	}
	return t.rows
}

// parallelOnce connects ParStreams clients, starts their uploads at the
// same instant and returns the aggregate rate and the fairness spread
// (slowest stream's rate over the fastest's).
func (e *env) parallelOnce(tun *tunnel, tcpAddr string, p peer) (float64, float64, error) {
	k, size := e.s.ParStreams, e.s.ParSize
	conns := make([]conn, 0, k)
	defer func() {
		for _, c := range conns {
			_ = finish(c)
		}
	}()
	for range k {
		c, err := tun.dialPeer(p, tcpAddr)
		if err != nil {
			return 0, 0, err
		}
		conns = append(conns, c)
		stop := e.guard(c, ioDeadline(size*int64(k)))
		defer stop()
		if err := request(c, modeUpload, size); err != nil {
			return 0, 0, err
		}
	}
	ends := make([]time.Duration, k)
	errs := make([]error, k)
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range conns {
		wg.Go(func() {
			ends[i], errs[i] = uploadTimed(c, e.payload, size, start)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, 0, err
	}
	slowest, fastest := slices.Max(ends), slices.Min(ends)
	return mibps(size*int64(k), slowest), float64(fastest) / float64(slowest), nil
}

// ---------------------------------------------------------------------
// 5. Interactive latency under load.

func scenarioLatency(e *env) []*Row {
	t := newTable()
	peers := []peer{peerRawTCP, peerRawWS, peerAgent}
	c := fmt.Sprintf("64 B echo + %d bulk, loopback", e.s.LoadStreams)
	tun, tcpAddr, ok := e.warmTunnel(t, []string{c}, peers)
	if !ok {
		return t.rows
	}
	defer tun.close()
	for _, p := range peers {
		r := t.row(c, p)
		if e.ctx.Err() != nil {
			r.fail(e.ctx.Err())
			continue
		}
		rtts, load, err := e.latencyOnce(tun, tcpAddr, p)
		if err != nil {
			r.fail(err)
			e.progress("   %-20s error: %v", p, err)
			continue
		}
		r.Samples = rtts
		p50, p90, p99 := quantile(rtts, 0.5), quantile(rtts, 0.9), quantile(rtts, 0.99)
		r.setValue(p99, "ms")
		r.extra("p50_ms", p50)
		r.extra("p90_ms", p90)
		r.extra("max_ms", slices.Max(rtts))
		r.extra("load_mib_per_s", load)
		r.Figure = fmt.Sprintf("p50 %.2f / p99 %.2f ms (load %.0f MiB/s)", p50, p99, load)
		e.progress("   %-20s %s", p, r.Figure)
	}
	base := t.get(c, peerRawTCP)
	t.get(c, peerRawWS).ratioTo(base)
	a := t.get(c, peerAgent)
	x := a.ratioTo(base)
	a.judge("p99 ≤ 5 ms and ≤ 3× separate TCP", a.value() <= 5 && x <= 3, a.value(), x)
	return t.rows
}

// latencyOnce runs LoadStreams endless bulk streams (half up, half down)
// beside one echo stream, all through peer p, and returns the echo round
// trips in ms and the bulk rate achieved meanwhile.
func (e *env) latencyOnce(tun *tunnel, tcpAddr string, p peer) ([]float64, float64, error) {
	dial := func() (conn, error) { return tun.dialPeer(p, tcpAddr) }
	var moved atomic.Int64
	var loads []conn
	var wg sync.WaitGroup
	defer func() {
		for _, c := range loads {
			_ = c.Close()
		}
		wg.Wait()
	}()
	for i := range e.s.LoadStreams {
		c, err := dial()
		if err != nil {
			return nil, 0, err
		}
		loads = append(loads, c)
		deadline := time.Now().Add(10 * time.Minute)
		_ = c.SetDeadline(deadline)
		mode := byte(modeUpload)
		if i%2 == 1 {
			mode = modeDownload
		}
		if err := request(c, mode, endless); err != nil {
			return nil, 0, fmt.Errorf("load stream: %w", err)
		}
		wg.Go(func() {
			if mode == modeUpload {
				_ = writeN(countingWriter{c, &moved}, e.payload, endless)
				return
			}
			if _, err := c.Write([]byte{goByte}); err != nil {
				return
			}
			_, _ = readN(countingReader{c, &moved}, endless)
		})
	}
	ec, err := dial()
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = finish(ec) }()
	stop := e.guard(ec, time.Now().Add(5*time.Minute))
	defer stop()
	if err := request(ec, modeEcho, 0); err != nil {
		return nil, 0, fmt.Errorf("echo stream: %w", err)
	}
	msg, got := make([]byte, 64), make([]byte, 64)
	copy(msg, e.payload)
	time.Sleep(300 * time.Millisecond) // let the bulk streams reach full speed
	m0, t0 := moved.Load(), time.Now()
	rtts := make([]float64, 0, e.s.EchoSamples)
	for range e.s.EchoSamples {
		start := time.Now()
		if _, err := ec.Write(msg); err != nil {
			return nil, 0, err
		}
		if _, err := io.ReadFull(ec, got); err != nil {
			return nil, 0, err
		}
		rtts = append(rtts, ms(time.Since(start)))
		if e.ctx.Err() != nil {
			return nil, 0, e.ctx.Err()
		}
		time.Sleep(e.s.EchoGap)
	}
	load := mibps(moved.Load()-m0, time.Since(t0))
	if load == 0 || math.IsNaN(load) {
		return nil, 0, errors.New("the bulk streams moved nothing while the echo ran")
	}
	return rtts, load, nil
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// uploadTimed sends size bytes on a connection whose request was already
// acknowledged and returns the time from start to the target's count.
func uploadTimed(c conn, payload []byte, size int64, start time.Time) (time.Duration, error) {
	if err := writeN(c, payload, size); err != nil {
		return 0, err
	}
	var cnt [8]byte
	if _, err := io.ReadFull(c, cnt[:]); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// ---------------------------------------------------------------------
// 7. CPU seconds per GiB, from scenario 1's loopback uploads.

func scenarioCPU(e *env) []*Row {
	t := newTable()
	peers := []peer{peerRawTCP, peerRawWS, peerNoAgent, peerAgent}
	c := "loopback upload"
	if len(e.cpu) == 0 {
		// Scenario 1 did not run: measure its loopback upload here.
		c += " (measured here)"
		func() {
			tun, tcpAddr, ok := e.warmTunnel(t, []string{c}, peers)
			if !ok {
				return
			}
			defer tun.close()
			for range e.s.Reps {
				for _, p := range peers {
					_, cpu, err := e.bulkOnce(tun, tcpAddr, p, dirUp, e.s.BulkSize)
					if err != nil {
						t.row(c, p).fail(err)
						continue
					}
					e.cpu[p] = append(e.cpu[p], cpu.minus(tun.baseCPU[p]))
				}
			}
		}()
	} else {
		c += " (scenario 1)"
	}
	e.note("CPU per GiB (scenario 7): utime+stime of each process around one %s loopback upload (the proxy's from its exit status, "+
		"the agent's and server's from /proc/PID/stat, 10 ms ticks), minus what an empty connection costs each, "+
		"so process start and dial are not counted; median of %d.", sizeName(e.s.BulkSize), e.s.Reps)
	for _, p := range peers {
		r := t.row(c, p)
		if r.Error != "" {
			continue
		}
		ss := e.cpu[p]
		if len(ss) == 0 {
			r.fail(errors.New("no loopback upload of scenario 1 succeeded"))
			continue
		}
		per := func(f func(cpuSample) time.Duration) []float64 {
			var xs []float64
			for _, s := range ss {
				xs = append(xs, f(s).Seconds()/(float64(s.bytes)/gib))
			}
			return xs
		}
		r.Samples = per(func(s cpuSample) time.Duration { return s.proxy + s.agent + s.server })
		prx := median(per(func(s cpuSample) time.Duration { return s.proxy }))
		agt := median(per(func(s cpuSample) time.Duration { return s.agent }))
		srv := median(per(func(s cpuSample) time.Duration { return s.server }))
		tot := median(r.Samples)
		var sw []float64
		for _, s := range ss {
			sw = append(sw, float64(s.switches)/(float64(s.bytes)/mib))
		}
		cs := median(sw)
		r.setValue(tot, "CPU-s/GiB")
		r.extra("proxy", prx)
		r.extra("server", srv)
		r.extra("ctx_switches_per_mib", cs)
		if p == peerRawTCP {
			r.Extra = nil
			r.Figure = fmt.Sprintf("%.2f CPU-s/GiB for both ends (the bench's writer and sink)", tot)
			continue
		}
		if p == peerAgent {
			r.extra("agent", agt)
			r.Figure = fmt.Sprintf("proxy %.2f + agent %.2f + server %.2f = %.2f CPU-s/GiB; %.0f ctx switches/MiB", prx, agt, srv, tot, cs)
		} else {
			r.Figure = fmt.Sprintf("proxy %.2f + server %.2f = %.2f CPU-s/GiB; %.0f ctx switches/MiB", prx, srv, tot, cs)
		}
		if p != peerRawWS {
			r.judge("≤ 1.0 CPU-s/GiB (all sandmux processes)", tot <= 1.0, tot)
		}
	}
	return t.rows
}
