package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sandmux/sandmux/agent"
	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/mux"
)

// dialFlags are shared by every command that dials a server.
func dialFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "url", Value: client.DefaultURLTemplate, Action: nonEmpty("url", "the server URL, e.g. --url "+client.DefaultURLTemplate), EnvVars: []string{"SANDMUX_URL"}, Usage: "server `URL`; {host} in it becomes HOST"},
		&cli.StringFlag{Name: "strip-suffix", Action: nonEmpty("strip-suffix", "the suffix to remove, e.g. --strip-suffix .e2b"), EnvVars: []string{"SANDMUX_STRIP_SUFFIX"}, Usage: "remove `SUFFIX` (e.g. .e2b, from a `Host *.e2b` pattern) from HOST before filling {host}"},
		&cli.StringSliceFlag{Name: "header", Usage: "extra handshake header `\"Name: value\"` (repeatable)"},
		&cli.StringFlag{Name: "token", Action: nonEmpty("token", "the token the server was started with"), EnvVars: []string{"SANDMUX_TOKEN"}, Usage: "bearer token the server requires"},
		&cli.StringFlag{Name: "token-file", Action: nonEmpty("token-file", "the file that holds the token"), Usage: "read the bearer token from `FILE` (wins over SANDMUX_TOKEN; keeps it off the command line)", TakesFile: true},
		&cli.StringFlag{Name: "ca", Action: nonEmpty("ca", "the PEM file of the CA"), Usage: "trust the CA certificates in this PEM `FILE` instead of the system's (a private CA)", TakesFile: true},
		&cli.BoolFlag{Name: "insecure", Usage: "skip TLS certificate verification, and send --token and --header over ws:// to another machine, in clear text (testing only)"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "debug logs on stderr"},
	}
}

func proxyCommand() *cli.Command {
	return &cli.Command{
		Name:      "proxy",
		Usage:     "OpenSSH ProxyCommand: connect stdin/stdout to HOST's sshd through the tunnel",
		ArgsUsage: "HOST",
		Description: "Use in ~/.ssh/config (`sandmux ssh-config` writes it), then `ssh <sandbox-id>.e2b`:\n\n   Host *.e2b\n     ProxyCommand sandmux proxy --strip-suffix .e2b --url 'wss://8081-{host}.e2b.app' %h\n\n" +
			"HOST, less --strip-suffix, fills {host} in --url (default " + client.DefaultURLTemplate + ").",
		Flags: append(append(dialFlags(), agentFlags(false)...),
			&cli.StringFlag{Name: "target", Usage: "ask the server for this allowlisted `HOST:PORT` instead of its default", Action: hostPort("target")},
			&cli.BoolFlag{Name: "no-agent", EnvVars: []string{"SANDMUX_NO_AGENT"}, Usage: "dial a WebSocket of this process's own instead of sharing the agent's"},
			&cli.BoolFlag{Name: "raw", Usage: "offer no sandmux protocol: one plain WebSocket per connection, as websocat (implies --no-agent)"},
			&cli.BoolFlag{Name: "fdpass", Usage: "for ssh's ProxyUseFdpass yes: pass ssh the connection's descriptor and exit, leaving the stream to the agent"},
			&cli.DurationFlag{Name: "connect-timeout", Value: 30 * time.Second, Usage: "how long to wait for a (re)connecting session; at least 1s", Action: atLeast("connect-timeout", dialFloor, "30s", "a dial over a real link takes several round trips")},
		),
		// HOST is arbitrary (ssh's %h): "help" or "h" must not print the
		// help text onto stdout, which is the stream.
		HideHelpCommand: true,
		Action:          runProxy,
	}
}

// clientConfig builds a client.Config from the dial flags for host.
func clientConfig(c *cli.Context, host string) (client.Config, error) {
	cfg := client.DefaultConfig()
	tmpl := c.String("url")
	if tmpl == "" { // SANDMUX_URL set but empty: the default, as when unset
		tmpl = client.DefaultURLTemplate
	}
	host, err := stripHostSuffix(host, c.String("strip-suffix"))
	if err != nil {
		return cfg, err
	}
	url, err := client.ExpandURL(tmpl, host)
	if err != nil {
		return cfg, err
	}
	cfg.URL = url
	if cfg.Token, err = clientToken(c); err != nil {
		return cfg, err
	}
	cfg.Header = http.Header{}
	for _, h := range c.StringSlice("header") {
		name, value, err := client.ParseHeader(h)
		if err != nil {
			return cfg, err
		}
		if err := headerConflict(c, cfg, name); err != nil {
			return cfg, err
		}
		cfg.Header.Add(name, value)
	}
	if !c.Bool("insecure") {
		if err := cleartextCredentials(cfg); err != nil {
			return cfg, err
		}
	}
	ca, err := caFile(c)
	if err != nil {
		return cfg, err
	}
	cfg.TLS, err = tlsConfig(ca, c.Bool("insecure"))
	if err != nil {
		return cfg, err
	}
	if cfg.Proxy, err = proxyFor(url); err != nil {
		return cfg, fmt.Errorf("HTTPS_PROXY, HTTP_PROXY or ALL_PROXY: %w", err)
	}
	cfg.Logger, err = newLogger(c.App.ErrWriter, clientLogLevel(c))
	if err != nil {
		return cfg, err
	}
	// The session's lines name their server through this, as the
	// agent's do (the client adds no url of its own).
	cfg.Logger = cfg.Logger.With("url", client.RedactURL(cfg.URL))
	// Checked here, not only by the agent: an agent older than a check
	// would take what it refuses for an outage and retry it.
	return cfg, cfg.Validate()
}

// clientLogLevel is quiet by default: every warning a session logs (lost,
// silent, not resumed) ends in the one line the command prints itself.
func clientLogLevel(c *cli.Context) string {
	if c.Bool("verbose") {
		return "debug"
	}
	return "error"
}

func runProxy(c *cli.Context) error {
	if err := oneHost(c, "sandmux proxy %h` in ProxyCommand, or `sandmux proxy abc123"); err != nil {
		return err
	}
	if c.Bool("raw") && c.String("target") != "" {
		return errors.New("--raw cannot choose a --target: a raw WebSocket reaches only the server's default target; drop one of them")
	}
	if err := checkFdpass(c); err != nil {
		return err
	}
	if err := clientConflicts(c); err != nil {
		return err
	}
	cfg, err := clientConfig(c, c.Args().First())
	if err != nil {
		return err
	}
	sig := newSignalWatch()
	defer sig.stop()
	outliveSuspend()
	report := newWaitReport()
	var conn net.Conn
	var handoff *agent.Handoff
	closeFn := func() {}
	cfg.Raw = c.Bool("raw")
	cfg.NoResume = c.Bool("no-resume")
	cfg.Resume.Grace = c.Duration("resume-timeout")
	cfg.Mux.KeepAliveInterval = c.Duration("keepalive")
	switch {
	case c.Bool("fdpass"):
		// ssh waits for this process to exit before it uses the
		// connection: nothing to wait for here once ssh has it.
		_, _, err = openViaAgent(sig.ctx, c, cfg, report)
		if err == nil {
			return nil
		}
	case c.Bool("no-agent") || cfg.Raw || !agentSupported:
		moverRuntime()
		if c.IsSet("connect-timeout") {
			// Without an agent, connecting is this one dial.
			cfg.DialTimeout = c.Duration("connect-timeout")
		}
		conn, closeFn, err = client.DialStream(sig.ctx, cfg, c.String("target"))
	default:
		conn, handoff, err = openViaAgent(sig.ctx, c, cfg, report)
	}
	if err != nil {
		if sig.hangup() {
			// Before a stream, a hang-up is ssh giving up (its
			// ConnectTimeout), never its normal end.
			return report.gaveUp(client.RedactURL(cfg.URL))
		}
		if sig.ctx.Err() != nil {
			// Stopped while waiting for the session: said as for a
			// stream interrupted later, not as "context canceled".
			return errors.New("interrupted")
		}
		if hint := doubledSuffixHint(c.String("url"), c.Args().First(), c.String("strip-suffix")); hint != "" {
			return fmt.Errorf("%w (%s)", err, hint)
		}
		return err
	}
	defer closeFn()
	if handoff != nil {
		// The agent moves the bytes; this process only waits.
		return waitHandoff(sig, handoff)
	}
	moverRuntime()
	err = pipeStdio(sig, conn, c.Args().First(), cfg.URL, c.App.ErrWriter)
	if err == nil && sig.hangup() {
		// ssh has exited: hand its pipes back before closeFn's close
		// handshake, a round trip to the server (releaseStdio). A verdict
		// (err) still needs stderr.
		releaseStdio()
	}
	return err
}

// hangupGrace bounds how long a proxy whose ssh has exited waits for the
// agent's verdict. An agent that takes a detach answers at once; an older
// one sends a clean end's verdict only when the server has closed its side
// too, which a busy machine can take seconds to get through.
const hangupGrace = 10 * time.Second

// waitHandoff waits until the agent, which serves the stream on this
// process's stdin and stdout, says how it ended.
func waitHandoff(sig *signalWatch, h *agent.Handoff) error {
	select {
	case <-h.Done():
	case <-sig.ctx.Done():
		if !sig.hangup() {
			h.Abort()
			return errors.New("interrupted")
		}
		// ssh has exited. Its caller may be reading the stderr this
		// process shares until every holder is gone (a pipe, as in
		// $(ssh ... 2>&1) or a subprocess capturing it), so leave the
		// stream's end to the agent rather than wait a round trip for
		// the server. A cut the agent told before ssh exited still
		// comes first.
		h.Detach()
		select {
		case <-h.Done():
		case <-time.After(hangupGrace):
			h.Abort()
			return nil
		}
	}
	var se *agent.StreamError
	if errors.As(h.Err(), &se) {
		return se
	}
	return nil
}

// openViaAgent asks the shared agent (starting it if needed) for a stream.
// When stdin and stdout are pipes or sockets, as under ssh, the agent
// takes them over and the result is a Handoff; otherwise the stream's
// bytes come through this process as conn. With --fdpass, the agent
// takes a socket of this process's own, whose other end goes to ssh, and
// the result is neither.
func openViaAgent(ctx context.Context, c *cli.Context, cfg client.Config, report *waitReport) (net.Conn, *agent.Handoff, error) {
	dir, err := agentDir(c)
	if err != nil {
		return nil, nil, err
	}
	req, err := agentRequest(c, cfg, c.Args().First())
	req.Overflow = true
	if err != nil {
		return nil, nil, err
	}
	req.Target = c.String("target")
	req.StopCommand = agentStopCommand(c, dir)
	// Through the agent, this process has nothing else to log: the
	// session's lines are the agent's. Without this line, -v printed
	// nothing at all.
	cfg.Logger.Debug("asking the agent for a stream; the session's logs are the agent's", "log", filepath.Join(dir, agent.LogName))
	// The wait for the agent is bounded by --connect-timeout too, plus the
	// agent's own start-up.
	octx, cancel := context.WithTimeout(ctx, c.Duration("connect-timeout")+15*time.Second)
	defer cancel()
	req.OnProgress = report.update
	if line := newReconnectLine(c.App.ErrWriter, req.Host); line != nil {
		req.OnProgress = func(p agent.Progress) {
			report.update(p)
			line.update(p)
		}
		defer line.finish()
	}
	if c.Bool("fdpass") {
		return nil, nil, agent.OpenFdpass(octx, dir, agentStarter(c, dir), req, os.Stdout, os.Stderr)
	}
	if agent.Handoffable(os.Stdin) && agent.Handoffable(os.Stdout) {
		return agent.OpenStdio(octx, dir, agentStarter(c, dir), req, os.Stdin, os.Stdout)
	}
	conn, err := agent.Open(octx, dir, agentStarter(c, dir), req)
	return conn, nil, err
}

// caFile is --ca's file, a leading ~/ (left unexpanded when quoted in a
// ProxyCommand) being the home directory; the proxy's own TLS check and
// the agent's request must read the same file.
func caFile(c *cli.Context) (string, error) {
	return tildePath("ca", c.String("ca"), myHome)
}

// agentRequest is the request for a stream through the agent to host,
// with what makes its session: the server, credentials, TLS trust and
// resumption settings of cfg and c.
func agentRequest(c *cli.Context, cfg client.Config, host string) (agent.OpenRequest, error) {
	req := agent.OpenRequest{
		URL: cfg.URL, Header: cfg.Header, Token: cfg.Token,
		Insecure: c.Bool("insecure"), ConnectTimeout: c.Duration("connect-timeout"), Host: host,
		Resume: &agent.ResumeOptions{Off: c.Bool("no-resume"), Timeout: c.Duration("resume-timeout")},
	}
	if cfg.Proxy != nil {
		req.Proxy = cfg.Proxy.String()
	}
	if cfg.Proxy != nil && cfg.Proxy.Scheme == "https" && runtime.GOOS != "darwin" {
		// The agent checks the proxy's certificate against the roots
		// of the environment it started in, read once: this proxy's
		// are sent. (Go on macOS asks the system, not SSL_CERT_FILE.)
		pem, err := proxyCAPEM(os.Getenv("SSL_CERT_FILE"), os.Getenv("SSL_CERT_DIR"))
		if err != nil {
			return req, err
		}
		req.ProxyCAPEM = pem
	}
	ca, err := caFile(c)
	if err != nil {
		return req, err
	}
	if ca != "" {
		pem, err := readFlagFile("ca", ca)
		if err != nil {
			return req, err
		}
		req.CAPEM = string(pem)
	}
	return req, nil
}

// pipeStdio splices stdin/stdout to conn until the stream ends or a
// signal arrives. A cut is told on stderr before the splice closes
// ssh's pipes, as the agent tells its proxies (serveHandoff): ssh exits
// as soon as they close and prints its own line, which came first
// (`kex_exchange_identification: Connection closed`) when the reason
// followed only once the splice had returned.
func pipeStdio(sig *signalWatch, conn net.Conn, host, url string, stderr io.Writer) error {
	stdoutEPIPE()
	in, out, restore := proxyStdio()
	// An interrupt cuts the stream: reset, so that the far end does not
	// take what it got for the whole. A hang-up is ssh's normal end.
	stop := context.AfterFunc(sig.ctx, func() {
		if sig.hangup() {
			// The end of the data, then the close (an agent's framed
			// stream would take a close alone for a cut).
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
			_ = conn.Close()
			return
		}
		mux.Abort(conn)
	})
	defer stop()
	var told sync.Once
	toldCut := false
	watched := mux.Watch(conn, func(err error) {
		if cutErr(err) {
			told.Do(func() {
				msg := verdictError(err, host, url).Error()
				printError(stderr, os.Stderr, msg)
				tellSSH(msg)
				toldCut = true
			})
		}
	})
	err := client.Pipe(watched, in, out) // closes in and out
	restore()
	told.Do(func() {}) // a tell under way is over; none starts after
	if toldCut {
		return cli.Exit("", 1)
	}
	if errors.Is(err, syscall.EPIPE) {
		// stdout's reader is gone: before stdout's writes were raw
		// system calls, Go raised SIGPIPE for this and the process ended
		// without a word, which is right for a ProxyCommand whose ssh
		// exited.
		return nil
	}
	// The tunnel's verdict comes first: when it cuts the stream, Pipe
	// closes stdout, so ssh exits and hangs up on this process, often
	// before the checks below run, and the reason would be lost.
	cut := cutErr(err)
	switch {
	case cut:
	case sig.hangup():
		// ssh hangs up on its ProxyCommand when it exits: the normal end.
		return nil
	case sig.ctx.Err() != nil:
		return errors.New("interrupted")
	}
	switch {
	case cut:
		return verdictError(err, host, url)
	case errors.Is(err, mux.ErrStreamReset):
		return client.StreamEndError(err, host, url)
	case err != nil:
		return fmt.Errorf("connection to %s lost: %w", host, err)
	}
	return nil
}

// cutErr reports whether err is the tunnel's cut of a stream (a refusal,
// an agent's verdict, a session that ended or could not be resumed),
// rather than its end by either side.
func cutErr(err error) bool {
	var se *agent.StreamError
	var refused *mux.StreamError // the stream is opened early: a refusal comes from its first read
	var nr *mux.NotResumedError
	return errors.As(err, &se) || errors.As(err, &refused) || errors.As(err, &nr) ||
		errors.Is(err, mux.ErrSessionEnded) || errors.Is(err, mux.ErrSessionDead) || client.ClosedByServer(err)
}

// verdictError words a cut (cutErr) for the user's one line.
func verdictError(err error, host, url string) error {
	var se *agent.StreamError
	var refused *mux.StreamError
	switch {
	case errors.As(err, &se):
		return se
	case errors.As(err, &refused):
		return refused
	}
	return client.StreamEndError(err, host, url)
}

// signalWatch turns SIGINT, SIGTERM and SIGHUP into a cancelled context and
// remembers whether it was a hangup.
type signalWatch struct {
	ctx    context.Context
	cancel context.CancelFunc
	ch     chan os.Signal
	hup    atomic.Bool
	done   chan struct{}
}

func newSignalWatch() *signalWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &signalWatch{ctx: ctx, cancel: cancel, ch: make(chan os.Signal, 1), done: make(chan struct{})}
	// terminateSignals leaves SIGHUP out under nohup: ssh then ignores a
	// hang-up too and goes on, and catching it here would cut its stream.
	signal.Notify(w.ch, terminateSignals...)
	go func() {
		defer close(w.done)
		select {
		case s := <-w.ch:
			w.hup.Store(s == syscall.SIGHUP)
			cancel()
		case <-ctx.Done():
		}
	}()
	return w
}

func (w *signalWatch) hangup() bool { return w.hup.Load() }

func (w *signalWatch) stop() {
	// ssh hangs up on its ProxyCommand as soon as it exits, which can be
	// after this but before main has printed why the stream ended. The
	// signals therefore stay caught, and are dropped, until the process
	// exits. Handing SIGHUP back with signal.Ignore (as this did) opens a
	// window in the runtime (sigignore stops handling the signal before it
	// installs SIG_IGN) in which a hangup gets the default action: the
	// process died silently, its line unprinted, about once in twenty
	// e2e runs under load.
	w.cancel()
	<-w.done
}
