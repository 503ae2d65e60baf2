package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sandmux/sandmux/agent"
	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/mux"
	"github.com/sandmux/sandmux/server"
)

func forwardCommand() *cli.Command {
	return &cli.Command{
		Name:      "forward",
		Usage:     "forward local TCP ports to targets inside the sandbox, like ssh -L",
		ArgsUsage: "-L [BIND:]LPORT:TARGETHOST:TARGETPORT... HOST",
		// HOST is any sandbox id, "help" too; --help prints help.
		HideHelpCommand: true,
		Description: "Each -L listens on BIND:LPORT (BIND defaults to 127.0.0.1; * or an empty BIND listens on\n" +
			"   every interface, localhost on 127.0.0.1 and [::1]; LPORT 0 picks a free port) and carries every\n" +
			"   connection to TARGETHOST:TARGETPORT in HOST's sandbox, which `sandmux server` must allow (its\n" +
			"   --target, or an --allow). All connections share the agent's one WebSocket (or, with --no-agent,\n" +
			"   one of this process's own).\n\n" +
			"   sandmux forward -L 5432:127.0.0.1:5432 -L 8080:127.0.0.1:80 abc123\n\n" +
			"   It runs until interrupted; --background detaches it, `sandmux status` lists it.",
		Flags: append(append(dialFlags(), agentFlags(false)...),
			&cli.StringSliceFlag{Name: "L", Aliases: []string{"local"}, Usage: "forward `SPEC`, [BIND:]LPORT:TARGETHOST:TARGETPORT as in ssh -L (repeatable)"},
			&cli.BoolFlag{Name: "no-agent", EnvVars: []string{"SANDMUX_NO_AGENT"}, Usage: "dial one WebSocket of this process's own instead of sharing the agent's"},
			&cli.DurationFlag{Name: "connect-timeout", Value: 30 * time.Second, Usage: "how long a connection waits for a (re)connecting session; at least 1s", Action: atLeast("connect-timeout", dialFloor, "30s", "a dial over a real link takes several round trips")},
			&cli.BoolFlag{Name: "background", Usage: "detach: run in the background (logs in the agent directory); prints its pid"},
			&cli.BoolFlag{Name: "background-child", Hidden: true, Usage: "internal: the detached process of --background"},
		),
		Action: runForward,
	}
}

// forwardSpec is one parsed -L.
type forwardSpec struct {
	Listen string // host:port to listen on
	Target string // host:port inside the sandbox
}

// parseForward parses ssh's -L syntax, [BIND:]LPORT:HOST:HOSTPORT, where
// IPv6 addresses are written in brackets.
func parseForward(s string) (forwardSpec, error) {
	bad := func(why string) (forwardSpec, error) {
		return forwardSpec{}, fmt.Errorf("-L %q: %s; want [BIND:]LPORT:TARGETHOST:TARGETPORT, e.g. -L 5432:127.0.0.1:5432", s, why)
	}
	var parts []string
	depth, from := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		case ':':
			if depth == 0 {
				parts = append(parts, s[from:i])
				from = i + 1
			}
		}
		if depth < 0 || depth > 1 {
			return bad("unbalanced brackets")
		}
	}
	if depth != 0 {
		return bad("unbalanced brackets")
	}
	parts = append(parts, s[from:])
	bind := "127.0.0.1"
	switch len(parts) {
	case 3:
	case 4:
		bind, parts = parts[0], parts[1:]
		if bind == "*" {
			bind = ""
		}
	default:
		if strings.Contains(s, "::") {
			return bad("wrong number of fields (an IPv6 address goes in brackets, as in [::1]:5432:[::1]:5432)")
		}
		return bad("wrong number of fields")
	}
	unbracket := func(h string) string { return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]") }
	bind = unbracket(bind)
	lport, host, hport := parts[0], unbracket(parts[1]), parts[2]
	if n, err := strconv.Atoi(lport); err != nil || n < 0 || n > 65535 {
		return bad(fmt.Sprintf("local port %q is not a number from 0 to 65535", lport))
	}
	if n, err := strconv.Atoi(hport); err != nil || n < 1 || n > 65535 {
		return bad(fmt.Sprintf("target port %q is not a number from 1 to 65535", hport))
	}
	if host == "" {
		return bad("no target host")
	}
	if fault, _ := bindHostFault(bind); fault != "" {
		return forwardSpec{}, fmt.Errorf("-L %q: BIND %s; leave BIND out for 127.0.0.1, or give * for every interface", s, fault)
	}
	// A target no server could allow (a range, a pattern) would start a
	// forward whose every connection is then refused as "not allowed".
	var he *server.TargetHostError
	if errors.As(server.CheckTarget(net.JoinHostPort(host, hport)), &he) {
		return forwardSpec{}, fmt.Errorf("-L %q: target %s, e.g. -L 5432:127.0.0.1:5432", s, he.Reason)
	}
	return forwardSpec{Listen: net.JoinHostPort(bind, lport), Target: net.JoinHostPort(host, hport)}, nil
}

// streamOpener opens streams to targets in one sandbox.
type streamOpener interface {
	open(ctx context.Context, target string) (net.Conn, error)
	close()
}

// agentOpener asks the shared agent for each stream.
type agentOpener struct {
	dir     string
	start   func() error
	req     agent.OpenRequest
	timeout time.Duration
}

func (o *agentOpener) open(ctx context.Context, target string) (net.Conn, error) {
	req := o.req
	req.Target = target
	ctx, cancel := context.WithTimeout(ctx, o.timeout+15*time.Second)
	defer cancel()
	return agent.Open(ctx, o.dir, o.start, req)
}

func (o *agentOpener) close() {}

// errRawForward: a raw bridge serves one connection per WebSocket to its
// single target, so it cannot honour a forward's TARGET.
var errRawForward = errors.New("the server is a raw WebSocket bridge (websocat?), not `sandmux server`: it cannot reach a chosen target")

// sessionOpener holds one session of this process's own (--no-agent) and
// opens every stream on it, redialing when it has ended.
type sessionOpener struct {
	cfg     client.Config
	timeout time.Duration

	mu     sync.Mutex
	sess   *client.Session
	closed bool
}

func (o *sessionOpener) open(ctx context.Context, target string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	for {
		s, err := o.session(ctx)
		if err != nil {
			return nil, err
		}
		st, err := s.OpenStream(ctx, target)
		if err == nil {
			return st, nil
		}
		// The session ended (it could not be resumed: the server
		// restarted) before the server answered this stream: nothing
		// reached the target yet, so carry it on a fresh session, as the
		// agent does, rather than reset a connection that need not be.
		if ctx.Err() == nil && s.EndedUnder(err) {
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) && s.Resuming() {
			// Say what the wait was for, not "context deadline exceeded".
			err = fmt.Errorf("could not connect to %s within %s: %w", client.RedactURL(o.cfg.URL), o.timeout, s.WaitingReason())
		}
		return nil, err
	}
}

// session returns the live session, dialing one if there is none.
func (o *sessionOpener) session(ctx context.Context) (*client.Session, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, net.ErrClosed
	}
	if o.sess != nil {
		select {
		case <-o.sess.Done():
			_ = o.sess.Close()
			o.sess = nil
		default:
			if o.sess.Mux().IsClosed() { // ending: Done may follow a moment later
				_ = o.sess.Close()
				o.sess = nil
			}
		}
	}
	if o.sess == nil {
		// Dialed under the lock: concurrent first connections share it.
		s, err := client.Dial(ctx, o.cfg)
		if err != nil {
			return nil, err
		}
		if s.Raw() {
			_ = s.Close()
			return nil, errRawForward
		}
		o.sess = s
	}
	return o.sess, nil
}

func (o *sessionOpener) close() {
	o.mu.Lock()
	o.closed = true
	s := o.sess
	o.sess = nil
	o.mu.Unlock()
	if s != nil {
		_ = s.Close()
	}
}

func runForward(c *cli.Context) error {
	if err := oneHost(c, "sandmux forward -L 5432:127.0.0.1:5432 abc123"); err != nil {
		return err
	}
	moverRuntime()
	host := c.Args().First()
	raw := c.StringSlice("L")
	if len(raw) == 0 {
		return errors.New("forward needs at least one -L [BIND:]LPORT:TARGETHOST:TARGETPORT")
	}
	if err := clientConflicts(c); err != nil {
		return err
	}
	specs := make([]forwardSpec, 0, len(raw))
	for i, r := range raw {
		s, err := parseForward(r)
		if err != nil {
			return err
		}
		if err := sameListen(raw[:i], specs, r, s); err != nil {
			return err
		}
		specs = append(specs, s)
	}
	cfg, err := clientConfig(c, host)
	if err != nil {
		return err
	}
	if c.Bool("background") {
		return startForwardBackground(c, host)
	}
	errw := c.App.ErrWriter
	var state *forwardStateFile
	if c.Bool("background-child") {
		state, errw, err = forwardChildSetup(c)
		if err != nil {
			return err
		}
		// The session logs to the capped log too, not to the start-up
		// file that stderr still is.
		if cfg.Logger, err = newLogger(errw, clientLogLevel(c)); err != nil {
			return err
		}
		cfg.Logger = cfg.Logger.With("url", client.RedactURL(cfg.URL))
	}

	var opener streamOpener
	if c.Bool("no-agent") || !agentSupported {
		cfg.NoResume = c.Bool("no-resume")
		cfg.Resume.Grace = c.Duration("resume-timeout")
		cfg.Mux.KeepAliveInterval = c.Duration("keepalive")
		opener = &sessionOpener{cfg: cfg, timeout: c.Duration("connect-timeout")}
	} else {
		dir, err := agentDir(c)
		if err != nil {
			return err
		}
		// Now, as proxy does on its first connection: the forward's
		// connections are later, and each would fail on its own line
		// while the forward looked up.
		if err := agent.EnsureDir(dir); err != nil {
			return err
		}
		req, err := agentRequest(c, cfg, host)
		if err != nil {
			return err
		}
		req.Forward = true
		req.StopCommand = agentStopCommand(c, dir)
		opener = &agentOpener{dir: dir, start: agentStarter(c, dir), req: req, timeout: c.Duration("connect-timeout")}
	}
	defer opener.close()
	if c.Bool("background-child") {
		// Every file a relative path named has been read by now: let go
		// of the starter's working directory, which this process would
		// keep busy (a mount that cannot be unmounted) while it runs.
		_ = os.Chdir("/")
	}

	f := &forwarder{opener: opener, host: host, url: cfg.URL, errw: errw,
		hint: doubledSuffixHint(c.String("url"), host, c.String("strip-suffix"))}
	listeners := make([]net.Listener, 0, len(specs))
	defer func() {
		for _, ln := range listeners {
			_ = ln.Close()
		}
	}()
	for i, s := range specs {
		ln, err := net.Listen(listenNetwork(s.Listen), loopbackFirst(s.Listen))
		if err != nil {
			return forwardListenError(raw[i], s.Listen, err)
		}
		listeners = append(listeners, ln)
		specs[i].Listen = ln.Addr().String()
		if ln6, ok := f.alsoIPv6(raw[i], s.Listen, ln); ok {
			listeners = append(listeners, ln6)
			specs = append(specs, forwardSpec{Listen: ln6.Addr().String(), Target: s.Target})
		}
	}
	for _, s := range specs {
		f.printf("forwarding %s -> %s in %s", s.Listen, s.Target, host)
	}
	if state != nil {
		if err := state.write(host, client.RedactURL(cfg.URL), specs, c.Bool("no-agent") || !agentSupported); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), terminateSignals...)
	defer stop()
	var wg sync.WaitGroup
	for i, ln := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.serve(ctx, ln, specs[i])
		}()
	}
	<-ctx.Done()
	for _, ln := range listeners {
		_ = ln.Close()
	}
	wg.Wait()
	if state != nil {
		// Only a clean exit removes the log: after a failure the starting
		// process reads the reason from it.
		state.remove()
	}
	return nil
}

// listenNetwork is "tcp4" for BIND 0.0.0.0, which (as with ssh -L) means
// every IPv4 address, where Go's "tcp" would listen on every IPv6 address
// too; "tcp" otherwise ("*" and an empty BIND mean every address).
func listenNetwork(hostport string) string {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return "tcp"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() && ip.To4() != nil {
		return "tcp4"
	}
	return "tcp"
}

// forwarder carries accepted connections to their targets.
type forwarder struct {
	opener streamOpener
	host   string // for the words of a cut (client.StreamEndError)
	url    string // the session's, for the same
	hint   string // doubledSuffixHint: HOST repeats what --url adds
	errw   io.Writer
	mu     sync.Mutex // one line at a time on errw
}

func (f *forwarder) printf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fmt.Fprintf(f.errw, "sandmux: "+format+"\n", args...)
}

// serve accepts on ln until ctx ends, then waits for its connections.
func (f *forwarder) serve(ctx context.Context, ln net.Listener, s forwardSpec) {
	var wg sync.WaitGroup
	defer wg.Wait()
	backoff := 5 * time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, do not spin.
			f.printf("forward %s: accept: %v", s.Listen, err)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(backoff*2, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.handle(ctx, c, s)
		}()
	}
}

// handle carries one connection, half-closes included.
func (f *forwarder) handle(ctx context.Context, c net.Conn, s forwardSpec) {
	if f.handOff(ctx, c, s) {
		return
	}
	stream, err := f.opener.open(ctx, s.Target)
	if err != nil {
		f.refuse(ctx, c, s, err)
		return
	}
	f.splice(ctx, c, stream, s)
}

// refuse ends c, which got no stream (err), and says why unless the
// forward is stopping. A reset: the connection was accepted, and a client
// whose server speaks first would take a clean end for an empty session.
func (f *forwarder) refuse(ctx context.Context, c net.Conn, s forwardSpec, err error) {
	mux.Abort(mux.Guarded(c))
	if ctx.Err() == nil {
		if f.hint != "" {
			// As the proxy says it: `forward … abc.e2b`, typed as
			// for ssh, dials 8081-abc.e2b.e2b.app.
			err = fmt.Errorf("%w (%s)", err, f.hint)
		}
		f.printf("forward %s -> %s: %v", s.Listen, s.Target, err)
	}
}

// splice carries c on stream until both end.
func (f *forwarder) splice(ctx context.Context, c, stream net.Conn, s forwardSpec) {
	lc := mux.Guarded(c)
	// ended: the stream's data came to its end; sent: the local client's
	// did (the splice passes that on as the stream's FIN).
	var cut, ended, sent atomic.Bool
	stop := context.AfterFunc(ctx, func() {
		if ended.Load() {
			// Everything came, end included: let the local client
			// read what its socket still holds. An upload still under
			// way is cut all the same: the target must not take the
			// part it got for the whole.
			if sent.Load() {
				_ = stream.Close()
			} else {
				mux.Abort(stream)
			}
			_ = lc.Close()
			return
		}
		// Stopped mid-transfer: neither the local client nor the target
		// may take what it got for the whole.
		cut.Store(true)
		mux.Abort(stream)
		mux.Abort(lc)
	})
	defer stop()
	local := mux.Watch(lc, func(err error) {
		if errors.Is(err, io.EOF) {
			sent.Store(true)
		}
	})
	err := mux.Splice(local, watchCut(stream, &cut, &ended))
	// The tunnel's failures are worth a line; a local client that reset
	// its connection is not.
	if err != nil && ctx.Err() == nil && cut.Load() {
		f.printf("forward %s -> %s: %v", s.Listen, s.Target, client.ForwardEndError(err, f.host, f.url))
	}
}

// sameListen refuses s (from -L r) when one of specs (from raws) takes
// the address it listens on: the same, or one that holds it.
func sameListen(raws []string, specs []forwardSpec, r string, s forwardSpec) error {
	host, port, _ := net.SplitHostPort(s.Listen)
	if port == "0" { // port 0: each its own
		return nil
	}
	for i, p := range specs {
		phost, pport, _ := net.SplitHostPort(p.Listen)
		switch {
		case p.Listen == s.Listen:
			return fmt.Errorf("-L %q and -L %q both listen on %s; give each its own local port", raws[i], r, s.Listen)
		case pport == port && bindsOverlap(phost, host):
			return fmt.Errorf("-L %q and -L %q both listen on port %s (%s and %s overlap); give each its own local port", raws[i], r, port, bindName(phost), bindName(host))
		}
	}
	return nil
}

// bindName is how a BIND is shown: "*" for every interface.
func bindName(h string) string {
	if h == "" {
		return "*"
	}
	return h
}

// forwardListenError words a failure to listen for -L raw on addr with
// what to change, as the server's --listen does (listenError): Go's own
// "bind: address already in use" named no way out.
func forwardListenError(raw, addr string, err error) error {
	var dnsErr *net.DNSError
	switch {
	case errnoIs(err, syscall.EADDRINUSE):
		return fmt.Errorf("-L %s: %s is in use (another forward, or a program listening there?): pick another local port, or 0 for a free one", raw, addr)
	case runtime.GOOS != "windows" && errnoIs(err, syscall.EACCES):
		return fmt.Errorf("-L %s: permission denied: local ports below 1024 need root; pick one from 1024 up, or 0 for a free one", raw)
	case errnoIs(err, syscall.EADDRNOTAVAIL), errnoIs(err, syscall.EINVAL):
		// EINVAL: a link-local address whose zone names no interface.
		host, _, _ := net.SplitHostPort(addr)
		return fmt.Errorf("-L %s: %s is not an address of this machine; leave BIND out for 127.0.0.1, or give * for every interface", raw, host)
	case errors.As(err, &dnsErr):
		return fmt.Errorf("-L %s: %s does not resolve here; leave BIND out for 127.0.0.1, or give * for every interface", raw, dnsErr.Name)
	default:
		return fmt.Errorf("-L %s: %w", raw, err)
	}
}
