//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/sandmux/sandmux/agent"
	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/server"
)

// profileInProcess is BENCH_PROFILE: the sandmux binary has no profiling
// flag, so this rebuilds scenario 1's loopback transfers in one process
// from the same libraries the binary uses (server.Server behind
// net/http, agent.Agent on its Unix socket, and the proxy's
// client.Pipe over real os.Pipe stdio) and CPU-profiles them. Every
// goroutine carries a pprof label side=server|agent|proxy|bench (goroutines
// inherit their creator's labels), so one side can be looked at with
//
//	go tool pprof -tagfocus side=server bench/out/prof/cpu-agent-upload.pprof
//
// The Go scheduler is shared here, unlike in the real processes, so hand-
// offs between the sides are cheaper than across processes; the per-byte
// work (syscalls, copies, framing) is the same code.
func profileInProcess(ctx context.Context, o Options) error {
	dir := o.Profile
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Enough bytes for a few thousand samples even in quick mode.
	size := max(o.Settings.BulkSize, 256*mib)
	payload := make([]byte, ioBufSize)
	rand.NewChaCha8([32]byte{'p'}).Read(payload)
	tgt, err := startTarget(payload)
	if err != nil {
		return err
	}
	defer tgt.Close()

	scfg := server.DefaultConfig()
	scfg.Target = tgt.Addr()
	srv, err := server.New(scfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() {
		pprof.Do(ctx, pprof.Labels("side", "server"), func(context.Context) { _ = hs.Serve(ln) })
	})
	defer func() {
		_ = hs.Close()
		_ = srv.Close()
		wg.Wait()
	}()
	url := "ws://" + ln.Addr().String()

	adir, err := os.MkdirTemp("", "smxb")
	if err != nil {
		return err
	}
	defer os.RemoveAll(adir)
	ag, err := agent.New(agent.DefaultConfig(adir))
	if err != nil {
		return err
	}
	actx, acancel := context.WithCancel(ctx)
	wg.Go(func() {
		pprof.Do(actx, pprof.Labels("side", "agent"), func(ctx context.Context) { _ = ag.Serve(ctx) })
	})
	defer acancel()
	noStart := func() error { return errors.New("the in-process agent is not up yet") }

	open := map[string]func(context.Context) (net.Conn, func(), error){
		"agent": func(ctx context.Context) (net.Conn, func(), error) {
			var c net.Conn
			var err error
			for deadline := time.Now().Add(10 * time.Second); ; {
				c, err = agent.Open(ctx, adir, noStart, agent.OpenRequest{URL: url, ConnectTimeout: 30 * time.Second, Host: "bench"})
				if err == nil || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			return c, func() {}, err
		},
		"no-agent": func(ctx context.Context) (net.Conn, func(), error) {
			cfg := client.DefaultConfig()
			cfg.URL = url
			sess, err := client.Dial(ctx, cfg)
			if err != nil {
				return nil, nil, err
			}
			c, err := sess.OpenStream(ctx, "")
			if err != nil {
				_ = sess.Close()
				return nil, nil, err
			}
			return c, func() { _ = sess.Close() }, nil
		},
	}
	for _, mode := range []string{"agent", "no-agent"} {
		for _, d := range []string{dirUp, dirDown} {
			path := filepath.Join(dir, fmt.Sprintf("cpu-%s-%s.pprof", mode, d))
			dur, err := profileOne(ctx, path, open[mode], d, size, payload)
			if err != nil {
				return fmt.Errorf("%s %s: %w", mode, d, err)
			}
			fmt.Fprintf(o.Progress, "profile: %s %s %s in %v (%.0f MiB/s) → %s\n", mode, d, sizeName(size), dur.Round(time.Millisecond), mibps(size, dur), path)
		}
	}
	return nil
}

// pipeConn is the bench's end of an in-process proxy's stdio.
type pipeConn struct{ in, out *os.File }

func (p pipeConn) Read(b []byte) (int, error)  { return p.out.Read(b) }
func (p pipeConn) Write(b []byte) (int, error) { return p.in.Write(b) }
func (p pipeConn) CloseWrite() error           { return p.in.Close() }
func (p pipeConn) Close() error {
	_ = p.in.Close() // closed already by CloseWrite, normally
	return p.out.Close()
}
func (p pipeConn) SetDeadline(t time.Time) error {
	return errors.Join(p.in.SetDeadline(t), p.out.SetDeadline(t))
}

func profileOne(ctx context.Context, path string, open func(context.Context) (net.Conn, func(), error), dir string, size int64, payload []byte) (time.Duration, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	bc := pipeConn{in: inW, out: outR}
	var wg sync.WaitGroup
	var proxyErr error
	ready := make(chan error, 1)
	wg.Go(func() {
		pprof.Do(ctx, pprof.Labels("side", "proxy"), func(ctx context.Context) {
			c, closeFn, err := open(ctx)
			ready <- err
			if err != nil {
				_ = inR.Close()
				_ = outW.Close()
				return
			}
			defer closeFn()
			proxyErr = client.Pipe(c, inR, outW)
		})
	})
	if err := <-ready; err != nil {
		_ = bc.Close()
		wg.Wait()
		return 0, err
	}
	f, err := os.Create(path)
	if err != nil {
		_ = bc.Close()
		wg.Wait()
		return 0, err
	}
	defer f.Close()
	var d time.Duration
	pprof.Do(ctx, pprof.Labels("side", "bench"), func(context.Context) {
		_ = bc.SetDeadline(ioDeadline(size))
		if err = request(bc, map[string]byte{dirUp: modeUpload, dirDown: modeDownload}[dir], size); err != nil {
			return
		}
		if err = pprof.StartCPUProfile(f); err != nil {
			return
		}
		start := time.Now()
		if dir == dirUp {
			d, err = uploadTimed(bc, payload, size, start)
		} else {
			if _, err = bc.Write([]byte{goByte}); err == nil {
				_, err = readN(bc, size)
				d = time.Since(start)
			}
		}
		pprof.StopCPUProfile()
	})
	ferr := finish(bc)
	wg.Wait()
	return d, errors.Join(err, ferr, proxyErr)
}
