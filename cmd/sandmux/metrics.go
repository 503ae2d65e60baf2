package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/sandmux/sandmux/server/metrics"
)

// serveMetrics serves /metrics on addr, a listener of its own: never the
// public one, which the sandbox exposes to the internet. It refuses an
// addr that is the public listener's. The returned func stops it.
func serveMetrics(addr string, public net.Listener, m *metrics.Metrics, log *slog.Logger) (func(), error) {
	ln, err := listen("metrics-listen", addr, "127.0.0.1:9090")
	if err != nil {
		if pa, ok := public.Addr().(*net.TCPAddr); ok && sameTCPPort(addr, pa) {
			return nil, fmt.Errorf("--metrics-listen %s is the public --listen address; metrics need a private one, e.g. 127.0.0.1:9090", addr)
		}
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: httpErrorLog(log)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", "err", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
		log.Warn("metrics are served beyond loopback; keep that port private", "addr", ta.String())
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		<-done
	}, nil
}

// sameTCPPort reports whether addr names pa's port (the bind failed, so a
// matching port is the public listener).
func sameTCPPort(addr string, pa *net.TCPAddr) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == fmt.Sprint(pa.Port)
}
