package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sandmux/sandmux/internal/logflood"
	"github.com/sandmux/sandmux/mux"
	"github.com/sandmux/sandmux/server"
	"github.com/sandmux/sandmux/server/metrics"
)

func serverCommand() *cli.Command {
	return &cli.Command{
		Name:  "server",
		Usage: "run in the sandbox: accept WebSockets and connect their streams to sshd",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Value: ":8081", EnvVars: []string{"SANDMUX_LISTEN"}, Usage: "address to listen on"},
			&cli.StringFlag{Name: "target", Value: "127.0.0.1:22", EnvVars: []string{"SANDMUX_TARGET"}, Usage: "default target for streams and raw (websocat) clients", Action: hostPort("target")},
			&cli.StringSliceFlag{Name: "allow", Usage: "another `HOST:PORT` clients may ask for (repeatable)", Action: hostPorts("allow")},
			&cli.StringFlag{Name: "token", EnvVars: []string{"SANDMUX_TOKEN"}, Usage: "require the header Authorization: Bearer `TOKEN` on the upgrade"},
			&cli.StringFlag{Name: "token-file", Action: nonEmpty("token-file", "the file that holds the token"), Usage: "read the token from `FILE`", TakesFile: true},
			&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"SANDMUX_LOG_LEVEL"}, Usage: "debug, info, warn or error", Action: logLevel},
			&cli.DurationFlag{Name: "resume-grace", Value: 10 * time.Minute, EnvVars: []string{"SANDMUX_RESUME_GRACE"}, Usage: "how long a session whose WebSocket was lost keeps its streams for the client to resume (0 = off)", Action: nonNegative("resume-grace", "off")},
			&cli.DurationFlag{Name: "keepalive", Value: 15 * time.Second, EnvVars: []string{"SANDMUX_KEEPALIVE"}, Usage: "session keepalive interval, 1s to 1h; a silent client is dropped within 2x this", Action: keepaliveRange},
			&cli.IntFlag{Name: "max-sessions", Value: 100, Action: positiveInt("max-sessions", 100), Usage: "most concurrent WebSockets; more are refused with 503"},
			&cli.IntFlag{Name: "max-handshakes", Value: 64, Action: positiveInt("max-handshakes", 64), Usage: "most connections still in their handshake (HTTP upgrade, token, hello) at once, as sshd's MaxStartups; at the limit a newcomer replaces the oldest one yet to send its request, else it is refused at once with 503 and Retry-After"},
			&cli.IntFlag{Name: "max-streams", Value: 256, Action: positiveInt("max-streams", 256), Usage: "most concurrent streams per session; more are refused"},
			&cli.IntFlag{Name: "max-total-streams", Value: 4096, Action: positiveInt("max-total-streams", 4096), Usage: "most concurrent streams of all sessions together (each holds a connection to its target); more are refused"},
			&cli.StringFlag{Name: "max-receive-buffer", Value: "auto", Usage: "most `SIZE` (e.g. 512M, 1G) of data from clients that all sessions together buffer for their targets beyond each stream's first 512 KiB window; at it, windows stop growing and clients wait (auto: a quarter of memory, at most 1G; 0: no bound across sessions)"},
			&cli.StringFlag{Name: "max-resume-buffer", Value: "auto", Usage: "most `SIZE` (e.g. 512M, 1G) of data sent to clients and not yet acknowledged that all resumable sessions together keep to resend, beyond 512 KiB each; at it, sessions wait for acknowledgements (auto: a quarter of memory, at most 1G; 0: no bound across sessions)"},
			&cli.DurationFlag{Name: "idle-timeout", Usage: "close a session with no stream for this long (0 = never)", Action: nonNegative("idle-timeout", "never")},
			&cli.DurationFlag{Name: "header-timeout", Value: 10 * time.Second, Usage: "limit for the HTTP upgrade and for each stream header (slow clients); at least 1s", Action: atLeast("header-timeout", dialFloor, "10s", "an upgrade or a stream header over a real link takes round trips")},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: 5 * time.Second, Usage: "how long SIGINT, SIGTERM or SIGHUP lets open streams finish before closing every session", Action: positive("shutdown-timeout", "5s")},
			&cli.StringFlag{Name: "metrics-listen", Action: nonEmpty("metrics-listen", "HOST:PORT, e.g. --metrics-listen 127.0.0.1:9090"), EnvVars: []string{"SANDMUX_METRICS_LISTEN"}, Usage: "serve Prometheus metrics on `ADDR` (e.g. 127.0.0.1:9090), a listener of their own; off by default"},
		}, embeddedFlags()...),
		Action: runServer,
	}
}

func runServer(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	log, err := newLogger(c.App.ErrWriter, c.String("log-level"))
	if err != nil {
		return err
	}
	// For net/http's complaints (httpErrorLog); the server limits its
	// own lines. Closed last, after every server: what it dropped is
	// said before the process exits.
	logLimit := logflood.Wrap(log)
	defer logLimit.Close()
	log = logLimit.Logger()
	outliveLogReader()
	if c.Bool("print-host-key") {
		return printHostKey(c)
	}
	_, tokenEnv := os.LookupEnv("SANDMUX_TOKEN")
	token, err := readToken(c.String("token"), c.IsSet("token") || tokenEnv, c.String("token-file"))
	if err != nil {
		return err
	}
	cfg := server.DefaultConfig()
	cfg.Target = c.String("target")
	cfg.Allow = c.StringSlice("allow")
	cfg.Token = token
	cfg.Logger = log
	cfg.ResumeGrace = c.Duration("resume-grace")
	cfg.Mux.KeepAliveInterval = c.Duration("keepalive")
	cfg.MaxSessions = c.Int("max-sessions")
	cfg.MaxStreams = c.Int("max-streams")
	cfg.MaxTotalStreams = c.Int("max-total-streams")
	cfg.MaxHandshakes = c.Int("max-handshakes")
	cfg.IdleTimeout = c.Duration("idle-timeout")
	if cfg.MaxReceiveBuffer, err = bufferFlag(c, "max-receive-buffer"); err != nil {
		return err
	}
	if cfg.MaxResumeBuffer, err = bufferFlag(c, "max-resume-buffer"); err != nil {
		return err
	}
	cfg.Mux.HeaderTimeout = c.Duration("header-timeout")
	emb, err := startEmbedded(c, log, &cfg) // --ssh embedded: cfg.Target becomes its address
	if err != nil {
		return err
	}
	defer emb.Close()
	if emb == nil {
		moverRuntime()
	}
	var m *metrics.Metrics
	if c.String("metrics-listen") != "" {
		m = metrics.New()
		cfg.OnHandshake = m.ObserveHandshake
	}
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	limit, known := fdLimit()
	warnFewDescriptors(log, cfg, limit, known)
	defer trimWhenIdle(srv.Carrying)()
	ln, err := listen("listen", c.String("listen"), "0.0.0.0:8081")
	if err != nil {
		return err
	}
	if m != nil {
		m.SetSource(srv.Stats)
		stopMetrics, err := serveMetrics(c.String("metrics-listen"), ln, m, log)
		if err != nil {
			_ = ln.Close()
			return err
		}
		defer stopMetrics()
	}
	ln = mux.Listener{Listener: ln}
	hs := publicHTTPServer(srv, cfg.Mux.HeaderTimeout, log)
	log.Info("listening", "addr", ln.Addr().String(), "target", cfg.Target, "allow", cfg.Allow, "auth", token != "", "max_receive_buffer", cfg.MaxReceiveBuffer, "max_resume_buffer", cfg.MaxResumeBuffer, "version", version)

	// A hang-up drains as SIGTERM does (unless started under nohup): left
	// to Go's default it killed the server at once, and every client then
	// waited out its --resume-timeout for a server that was gone instead
	// of being told it shut down.
	ctx, stop := signalContext()
	defer stop()
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		_ = srv.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// A second signal ends the drain: every session is closed now, so
	// that each client is told the server closed it. Left to Go's
	// default, it killed the process, and every client took the server
	// for a lost path and tried to resume it for its --resume-timeout
	// (10 m), then told its ssh "could not be resumed". A signal while
	// the sessions close ends the process at once (shutdownServer).
	// Caught before the first's catch is dropped, so that none slips by.
	again := make(chan os.Signal, 1)
	signal.Notify(again, terminateSignals...)
	defer signal.Stop(again)
	stop()
	drain := c.Duration("shutdown-timeout")
	log.Info("shutting down; open streams have until the shutdown timeout to finish", "timeout", drain, "cause", context.Cause(ctx))
	if err := shutdownServer(srv, hs, emb, drain, again, log); err != nil {
		return err
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// shutdownServer drains srv for up to drain, or until a signal comes on
// again, then closes the public listener (hs) and the embedded sshd, if
// any. The listener stays open while srv.Shutdown drains, so that a
// session whose WebSocket is lost meanwhile can resume and finish its
// streams (new sessions get 503, and /healthz says draining). Then
// hs.Shutdown closes it; upgraded connections are hijacked and invisible
// to it, which is why srv.Shutdown closes them. Closing what is still
// open after the drain gets closeGrace more (a session's close waits
// briefly for its peer); signals are no longer caught on again then, so
// that one more ends the process at once (Go's default).
func shutdownServer(srv *server.Server, hs *http.Server, emb *embedded, drain time.Duration, again chan os.Signal, log *slog.Logger) error {
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Shutdown(sctx) // which logs the streams it cuts
		hctx, hcancel := context.WithTimeout(context.Background(), closeGrace)
		_ = hs.Shutdown(hctx)
		hcancel()
		emb.Close()
	}()
	select {
	case <-done:
		return nil
	case <-again:
		log.Info("second signal: closing every session now")
		cancel()
	case <-sctx.Done():
	}
	signal.Stop(again)
	select {
	case <-done:
		return nil
	case <-time.After(closeGrace):
		return fmt.Errorf("sessions did not close within the %s after the drain", closeGrace)
	}
}

// maxHeaderBytes caps a request's header on the public listener. A
// sandmux upgrade's is under 1 KiB, and an edge proxy's additions a few
// more; Go's default, 1 MiB, let anyone on the internet, token or not,
// make the server hold about 1.2 MiB per connection for --header-timeout
// (400 connections: 480 MiB) before the token is even looked at.
const maxHeaderBytes = 64 << 10

// publicHTTPServer is the http.Server of the public listener, whose
// requests may come from anyone: bounded in time and size before the
// handler (and its token check) sees them, and in number while they
// are (srv's ConnContext and ConnState keep --max-handshakes).
func publicHTTPServer(srv *server.Server, headerTimeout time.Duration, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           srv,
		ConnContext:       srv.ConnContext,
		ConnState:         srv.ConnState,
		ReadHeaderTimeout: headerTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// Without it a keep-alive connection that goes quiet after a
		// request (a health check) is held forever, outside --max-sessions.
		IdleTimeout: headerTimeout,
		ErrorLog:    httpErrorLog(log),
	}
}

// closeGrace is how long closing the sessions may take after the drain.
const closeGrace = 5 * time.Second

// readToken takes the token from exactly one of --token and --token-file.
// An empty --token (an unset variable in a start script, say) is refused
// rather than taken for "no authentication". tokenSet says whether
// --token or SANDMUX_TOKEN was given at all.
//
// Spaces and line ends around the token are dropped, from --token as
// from the file: HTTP trims them from the header a client sends, so a
// token kept with them (a value read from a file into the template's
// environment keeps its newline) could never match, and every client got
// 401 for a token it had right.
func readToken(token string, tokenSet bool, file string) (string, error) {
	token = strings.TrimSpace(token)
	if tokenSet && token == "" && file == "" {
		return "", errors.New("--token (or SANDMUX_TOKEN) is empty: give the token, or leave both unset to run without authentication")
	}
	if file == "" {
		return token, checkToken("--token (or SANDMUX_TOKEN)", token)
	}
	if token != "" {
		return "", errors.New("both --token (or SANDMUX_TOKEN) and --token-file are set; use one")
	}
	t, err := readTokenFile(file, "put in it the token clients are to send")
	if err != nil {
		return "", err
	}
	return t, checkToken("--token-file "+file, t)
}

// checkToken refuses a token no client can send: an HTTP header cannot
// carry control characters (a second line, say).
func checkToken(from, token string) error {
	if strings.ContainsFunc(token, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return fmt.Errorf("%s holds a control character (a line break?), which no client can send in a header; give the token on one line", from)
	}
	return nil
}
