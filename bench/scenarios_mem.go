//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/sandmux/sandmux/client"
)

// ---------------------------------------------------------------------
// 6. Memory: RSS per idle stream and per idle session.
//
// RSS counts touched pages only. Every idle stream here has carried its
// request and acknowledgement, as an idle ssh connection has carried its
// handshake, so buffers it has touched count; a buffer allocated but never
// written (say the unused tail of a 64 KiB copy buffer) does not, until a
// burst of traffic touches it.

const (
	procServer = "server process"
	procAgent  = "agent process"
	procProxy  = "proxy process"
	settleTime = time.Second
)

func scenarioMemory(e *env) []*Row {
	t := newTable()
	var names []string
	for i, f := range e.limitFlags(0) {
		if i%2 == 0 {
			names = append(names, f)
		}
	}
	if len(names) > 0 {
		e.note("scenario 6 raises the server's %s above the counts it opens", strings.Join(names, " and "))
	}
	e.memServerStreams(t)
	e.memAgentStreams(t)
	e.memSessions(t)
	return t.rows
}

// perItem renders and judges a slope: (rss1 - rss0) / n.
func perItem(r *Row, rss0, rss1 int64, n int, unit, target string, limitKiB float64) {
	v := float64(rss1-rss0) / kib / float64(n)
	r.setValue(v, "KiB/"+unit)
	r.extra("rss_before_kib", float64(rss0)/kib)
	r.extra("rss_after_kib", float64(rss1)/kib)
	r.extra("count", float64(n))
	r.Figure = fmt.Sprintf("%.0f KiB/%s (RSS %.1f → %.1f MiB)", v, unit, float64(rss0)/mib, float64(rss1)/mib)
	if target != "" {
		r.judge(target, v <= limitKiB, v)
	}
}

// streamConn adapts a stream from the client library to the bench's conn.
type streamConn struct{ net.Conn }

func (s streamConn) CloseWrite() error {
	if cw, ok := s.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return s.Conn.Close()
}

// memServerStreams opens IdleStreams streams on one session with the client
// library in this process and measures the server's RSS slope.
func (e *env) memServerStreams(t *table) {
	n := e.s.IdleStreams
	c := fmt.Sprintf("%d idle streams, 1 session (in-process client)", n)
	r := t.named(c, procServer)
	err := func() error {
		srv, err := e.startServer(e.target.Addr(), e.limitFlags(n+16)...)
		if err != nil {
			return err
		}
		defer srv.Close()
		cfg := client.DefaultConfig()
		cfg.URL = "ws://" + srv.Addr
		ctx, cancel := context.WithTimeout(e.ctx, 5*time.Minute)
		defer cancel()
		sess, err := client.Dial(ctx, cfg)
		if err != nil {
			return err
		}
		defer sess.Close()
		var streams []net.Conn
		defer func() {
			for _, s := range streams {
				_ = s.Close()
			}
		}()
		open := func() error {
			s, err := sess.OpenStream(ctx, "")
			if err != nil {
				return err
			}
			streams = append(streams, s)
			_ = s.SetDeadline(time.Now().Add(time.Minute))
			if err := request(streamConn{s}, modeEcho, 0); err != nil {
				return err
			}
			return s.SetDeadline(time.Time{})
		}
		if err := open(); err != nil {
			return err
		}
		rss0, err := settledRSS(srv.Pid(), settleTime)
		if err != nil {
			return err
		}
		for range n {
			if err := open(); err != nil {
				return fmt.Errorf("stream %d: %w", len(streams), err)
			}
		}
		rss1, err := settledRSS(srv.Pid(), settleTime)
		if err != nil {
			return err
		}
		perItem(r, rss0, rss1, n, "stream", "≤ 64 KiB per idle stream", 64)
		return srv.alive()
	}()
	if err != nil {
		r.fail(err)
	}
	e.progress("   %-48s %-16s %s", c, r.Peer, orErr(r))
}

func orErr(r *Row) string {
	if r.Error != "" {
		return "error: " + r.Error
	}
	return r.Figure
}

// parallelDo runs f(0..n-1) with at most width running at once and
// returns the first error; after an error it starts no more.
func parallelDo(n, width int, f func(i int) error) error {
	sem := make(chan struct{}, width)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i := range n {
		sem <- struct{}{}
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// memAgentStreams runs ProxyStreams proxies through one agent, each holding
// an idle stream, and measures the agent's and server's RSS slopes.
func (e *env) memAgentStreams(t *table) {
	n := e.s.ProxyStreams
	c := fmt.Sprintf("%d idle streams via proxies, 1 session", n)
	ra, rs, rp := t.named(c, procAgent), t.named(c, procServer), t.named(c, procProxy)
	err := func() error {
		tun, _, err := e.openTunnel(loopback(), e.target.Addr(), e.limitFlags(n+16)...)
		if err != nil {
			return err
		}
		defer tun.close()
		if err := e.warmUp(tun, []peer{peerAgent}); err != nil {
			return err
		}
		apid, _ := tun.agent.Pid()
		a0, err := settledRSS(apid, settleTime)
		if err != nil {
			return err
		}
		s0, err := procRSS(tun.srv.Pid())
		if err != nil {
			return err
		}
		procs := make([]conn, n)
		defer func() {
			_ = parallelDo(n, 16, func(i int) error {
				if procs[i] != nil {
					_ = finish(procs[i])
				}
				return nil
			})
		}()
		err = parallelDo(n, 8, func(i int) error {
			if err := e.ctx.Err(); err != nil {
				return err
			}
			c, err := tun.dial(peerAgent)
			if err != nil {
				return err
			}
			procs[i] = c
			stop := e.guard(c, time.Now().Add(time.Minute))
			defer stop()
			if err := request(c, modeEcho, 0); err != nil {
				return fmt.Errorf("proxy %d: %w", i, err)
			}
			return c.SetDeadline(time.Time{})
		})
		if err != nil {
			return err
		}
		st, err := tun.agent.status()
		if err != nil {
			return err
		}
		if st.Streams != n {
			return fmt.Errorf("agent reports %d open streams, want %d", st.Streams, n)
		}
		a1, err := settledRSS(apid, settleTime)
		if err != nil {
			return err
		}
		s1, err := procRSS(tun.srv.Pid())
		if err != nil {
			return err
		}
		perItem(ra, a0, a1, n, "stream", "≤ 64 KiB per idle stream", 64)
		perItem(rs, s0, s1, n, "stream", "≤ 64 KiB per idle stream", 64)
		var rss []float64
		for _, c := range procs {
			if v, err := procRSS(c.(*proc).Pid()); err == nil {
				rss = append(rss, float64(v)/mib)
			}
		}
		m := median(rss)
		rp.setValue(m, "MiB")
		rp.Samples = rss
		rp.Figure = fmt.Sprintf("%.1f MiB RSS each (median of %d)", m, len(rss))
		return tun.srv.alive()
	}()
	if err != nil {
		for _, r := range []*Row{ra, rs, rp} {
			r.fail(err)
		}
	}
	for _, r := range []*Row{ra, rs, rp} {
		e.progress("   %-48s %-16s %s", c, r.Peer, orErr(r))
	}
}

// memSessions opens IdleSessions sessions in one agent (one URL each; the
// server serves any path) and measures the agent's and server's RSS slopes.
func (e *env) memSessions(t *table) {
	n := e.s.IdleSessions
	c := fmt.Sprintf("%d idle sessions, 1 agent", n)
	ra, rs := t.named(c, procAgent), t.named(c, procServer)
	err := func() error {
		tun, _, err := e.openTunnel(loopback(), e.target.Addr(), e.limitFlags(n+16)...)
		if err != nil {
			return err
		}
		defer tun.close()
		base := tun.url
		// One stream opens session i and ends; the session stays (for the
		// agent's --persist).
		touch := func(i int) error {
			if err := e.ctx.Err(); err != nil {
				return err
			}
			args := e.proxyArgs(peerAgent, fmt.Sprintf("%s/s%d", base, i), tun.ca, tun.agent)
			pr, err := startProc(e.bin, args, e.childEnv())
			if err != nil {
				return err
			}
			stop := e.guard(pr, time.Now().Add(time.Minute))
			err = request(pr, modeEcho, 0)
			stop()
			if ferr := finish(pr); err == nil && ferr != nil {
				e.teardownFault(peerAgent, ferr)
			}
			if err != nil {
				return fmt.Errorf("session %d: %w", i, err)
			}
			return nil
		}
		if err := touch(0); err != nil {
			return err
		}
		apid, err := tun.agent.Pid()
		if err != nil {
			return err
		}
		a0, err := settledRSS(apid, settleTime)
		if err != nil {
			return err
		}
		s0, err := procRSS(tun.srv.Pid())
		if err != nil {
			return err
		}
		if err := parallelDo(n, 8, func(i int) error { return touch(i + 1) }); err != nil {
			return err
		}
		st, err := tun.agent.status()
		if err != nil {
			return err
		}
		up := 0
		for _, s := range st.Sessions {
			if s.State == "connected" {
				up++
			}
		}
		if up != n+1 {
			return fmt.Errorf("agent holds %d connected sessions, want %d", up, n+1)
		}
		a1, err := settledRSS(apid, settleTime)
		if err != nil {
			return err
		}
		s1, err := procRSS(tun.srv.Pid())
		if err != nil {
			return err
		}
		perItem(ra, a0, a1, n, "session", "≤ 256 KiB per idle session", 256)
		perItem(rs, s0, s1, n, "session", "≤ 256 KiB per idle session", 256)
		return tun.srv.alive()
	}()
	if err != nil {
		ra.fail(err)
		rs.fail(err)
	}
	for _, r := range []*Row{ra, rs} {
		e.progress("   %-48s %-16s %s", c, r.Peer, orErr(r))
	}
}
