//go:build linux

package main

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// SFTP's read pattern, which scp (SFTP mode, OpenSSH 9) downloads with:
// 64 reads of 32 KiB outstanding, a new one sent as each answer arrives.
// Its rate is the window over the loaded round trip, so it shows what
// every wake-up on the path costs, which bulk transfers hide.
const (
	rrReqSize     = 32
	rrRespSize    = 32 << 10
	rrOutstanding = 64
)

// answer serves modeRR: rrRespSize bytes for every request, until EOF.
func (t *target) answer(c io.ReadWriter) error {
	req := make([]byte, rrReqSize)
	for {
		if _, err := io.ReadFull(c, req); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if _, err := c.Write(t.buf[:rrRespSize]); err != nil {
			return err
		}
	}
}

// 9. Request/response: the scp download's pattern without ssh.
func scenarioRR(e *env) []*Row {
	t := newTable()
	peers := []peer{peerRawTCP, peerRawWS, peerNoAgent, peerAgent}
	c := fmt.Sprintf("%d× %d KiB outstanding, loopback", rrOutstanding, rrRespSize>>10)
	tun, tcpAddr, ok := e.warmTunnel(t, []string{c}, peers)
	if !ok {
		return t.rows
	}
	defer tun.close()
	size := e.s.RRSize / rrRespSize * rrRespSize
	for rep := range e.s.RRReps {
		order := slices.Clone(peers)
		if rep%2 == 1 {
			slices.Reverse(order)
		}
		for _, p := range order {
			r := t.row(c, p)
			if r.Error != "" || e.ctx.Err() != nil {
				continue
			}
			d, err := e.rrOnce(tun, tcpAddr, p, size)
			v := mibps(size, d)
			record(r, v, err)
			e.progress("   %-20s rep %d/%d: %s", p, rep+1, e.s.RRReps, fmtResult(v, "MiB/s", err))
		}
	}
	for _, r := range t.rows {
		if r.Error == "" {
			r.setValue(median(r.Samples), "MiB/s")
			r.Figure = fmt.Sprintf("%.0f MiB/s", r.value())
		}
	}
	base := t.get(c, peerRawTCP)
	for _, p := range peers[1:] {
		t.get(c, p).ratioTo(base)
	}
	e.note("Scenario 9 has no target: it is scp's download pattern (SFTP reads, %d of %d KiB outstanding) without ssh, "+
		"whose rate is the window over the loaded round trip, so it shows the cost of each wake-up on the path that bulk transfers hide.",
		rrOutstanding, rrRespSize>>10)
	return t.rows
}

// rrOnce reads size bytes as answers to requests, rrOutstanding at a time.
func (e *env) rrOnce(tun *tunnel, tcpAddr string, p peer, size int64) (time.Duration, error) {
	c, err := tun.dialPeer(p, tcpAddr)
	if err != nil {
		return 0, err
	}
	stop := e.guard(c, ioDeadline(size))
	defer stop()
	d, err := rr(c, size)
	if cerr := finish(c); err == nil && cerr != nil && p.tunnelled() {
		e.teardownFault(p, cerr)
	}
	if err == nil && p.tunnelled() {
		err = tun.srv.alive()
	}
	return d, err
}

// rr keeps rrOutstanding requests in flight until size bytes of answers
// have arrived. Requests are written by the reading goroutine: they are
// tiny and the target reads them all, so the write never blocks for long.
func rr(c conn, size int64) (time.Duration, error) {
	if err := request(c, modeRR, 0); err != nil {
		return 0, err
	}
	total := size / rrRespSize
	reqs := make([]byte, rrReqSize*rrOutstanding)
	start := time.Now()
	sent := min(total, rrOutstanding)
	if _, err := c.Write(reqs[:sent*rrReqSize]); err != nil {
		return 0, fmt.Errorf("send requests: %w", err)
	}
	buf := make([]byte, ioBufSize)
	var got int64
	for got < size {
		n, err := c.Read(buf)
		if n > 0 {
			before := got / rrRespSize
			got += int64(n)
			// One request for every answer completed, while any remain.
			if more := min(got/rrRespSize-before, total-sent); more > 0 {
				if _, err := c.Write(reqs[:more*rrReqSize]); err != nil {
					return 0, fmt.Errorf("send requests: %w", err)
				}
				sent += more
			}
		}
		if err != nil {
			return 0, fmt.Errorf("after %d of %d bytes: %w", got, size, err)
		}
	}
	return time.Since(start), nil
}
