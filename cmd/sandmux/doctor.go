package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	neturl "net/url"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/mux"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:      "doctor",
		Usage:     "check, step by step, the path to HOST's sandmux server and its sshd, and say what to fix",
		ArgsUsage: "HOST",
		// HOST is any sandbox id, "help" too; --help prints help.
		HideHelpCommand: true,
		Description: "Checks, each with its time: URL expansion, DNS, TCP, TLS (certificate subject and expiry),\n" +
			"   authentication, the WebSocket upgrade, the subprotocol the server picked, a stream to the\n" +
			"   target and its SSH banner, the round-trip time, and a --probe of latency (or, with\n" +
			"   --probe-target naming an allowlisted echo service, throughput). It dials a session of its\n" +
			"   own, not the agent's. The probe never sends test data to sshd: it only reads sshd's banner\n" +
			"   (sshd then logs one connection closed before authentication).\n\n" +
			"   It ends with a verdict and, after a failure, the likely fix; it exits 1 when a check failed.",
		Flags: append(dialFlags(),
			&cli.StringFlag{Name: "target", Usage: "check this allowlisted `HOST:PORT` instead of the server's default", Action: hostPort("target")},
			&cli.DurationFlag{Name: "probe", Value: 5 * time.Second, Usage: "how long to probe the session (0 = skip)", Action: nonNegative("probe", "skip")},
			&cli.StringFlag{Name: "probe-target", Usage: "allowlisted echo service `HOST:PORT` to measure throughput through (default: measure latency only)", Action: hostPort("probe-target")},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "limit for each step; at least 1s", Action: atLeast("timeout", dialFloor, "10s", "a dial over a real link takes several round trips")},
			&cli.BoolFlag{Name: "json", Usage: "machine-readable report on stdout"},
		),
		Action: runDoctor,
	}
}

// Step outcomes.
const (
	stepPass = "pass"
	stepFail = "fail"
	stepWarn = "warn"
	stepSkip = "skip"
)

type doctorStep struct {
	Name     string  `json:"name"`
	Status   string  `json:"status"`
	Detail   string  `json:"detail"`
	Millis   float64 `json:"duration_ms,omitempty"`
	Fix      string  `json:"fix,omitempty"`
	duration time.Duration
}

type doctorReport struct {
	Host    string       `json:"host"`
	URL     string       `json:"url,omitempty"`
	Steps   []doctorStep `json:"steps"`
	Verdict string       `json:"verdict"`
	Fix     string       `json:"fix,omitempty"`
	OK      bool         `json:"ok"`
}

type doctor struct {
	c        *cli.Context
	out      io.Writer // nil in --json mode
	timeout  time.Duration
	report   doctorReport
	degraded string // why a working path is not the full sandmux one
	degFix   string
	notSSH   string // the target, when it answered or stayed silent but is no SSH server
	hostHint string // HOST ends in the suffix --url adds (doubledSuffixHint)
}

func runDoctor(c *cli.Context) error {
	if err := flagsFirst(c); err != nil {
		return err
	}
	if c.NArg() > 1 {
		return errors.New("doctor takes one HOST (the sandbox id), e.g. `sandmux doctor abc123`")
	}
	if c.Duration("probe") == 0 && onCommandLine(c, []string{"probe-target"}) {
		return errors.New("--probe-target is measured during the --probe, which --probe 0 skips: give --probe 5s, or drop --probe-target")
	}
	if err := tlsConflict(c); err != nil {
		return err
	}
	d := &doctor{c: c, timeout: c.Duration("timeout"), report: doctorReport{Host: c.Args().First()}}
	if !c.Bool("json") {
		d.out = c.App.Writer
	}
	ctx, stop := signalContext()
	defer stop()
	d.run(ctx)
	d.verdict()
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d.report); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(d.out, "verdict: %s\n", d.report.Verdict)
		if d.report.Fix != "" {
			fmt.Fprintf(d.out, "fix: %s\n", d.report.Fix)
		}
	}
	if !d.report.OK {
		return cli.Exit("", 1)
	}
	return nil
}

// add records a step and prints it at once, so a slow step shows where
// it is.
func (d *doctor) add(name, status string, took time.Duration, fix, format string, args ...any) {
	s := doctorStep{Name: name, Status: status, Detail: fmt.Sprintf(format, args...), Fix: fix, duration: took}
	if took > 0 {
		s.Millis = float64(took.Microseconds()) / 1000
	}
	d.report.Steps = append(d.report.Steps, s)
	if d.out == nil {
		return
	}
	line := fmt.Sprintf("%-4s  %-8s  %s", strings.ToUpper(status), name, s.Detail)
	if took > 0 {
		line += fmt.Sprintf("  (%s)", roundDur(took))
	}
	fmt.Fprintln(d.out, line)
}

func (d *doctor) verdict() {
	for _, s := range d.report.Steps {
		if s.Status == stepFail {
			d.report.Verdict = fmt.Sprintf("FAIL at %s: %s", s.Name, s.Detail)
			d.report.Fix = s.Fix
			if d.hostHint != "" {
				// The likelier cause than whatever failed at that URL.
				d.report.Fix = d.hostHint
			}
			return
		}
	}
	d.report.OK = true
	if d.degraded != "" {
		d.report.Verdict = "works, degraded: " + d.degraded
		d.report.Fix = d.degFix
		return
	}
	if d.notSSH != "" {
		d.report.Verdict = fmt.Sprintf("healthy: streams to %s through %s work (it is not an SSH server: for `sandmux forward`, not ssh)", d.notSSH, d.report.URL)
		return
	}
	d.report.Verdict = fmt.Sprintf("healthy: ssh, scp and sftp through %s should work", d.report.URL)
}

func (d *doctor) stepCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.timeout)
}

// run performs the checks in order; the first failure ends them.
func (d *doctor) run(ctx context.Context) {
	if d.out != nil {
		fmt.Fprintf(d.out, "sandmux doctor %s (sandmux %s)\n", d.report.Host, version)
	}
	cfg, ok := d.checkURL()
	if !ok {
		return
	}
	u, _ := neturl.Parse(cfg.URL)
	hostname, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"ws": "80", "wss": "443"}[u.Scheme]
	}
	if !d.checkDNS(ctx, cfg, hostname) {
		return
	}
	conn, ok := d.checkTCP(ctx, cfg, net.JoinHostPort(hostname, port), port)
	if !ok {
		return
	}
	if u.Scheme == "wss" {
		ok := d.checkTLS(ctx, conn, cfg.TLS, hostname)
		_ = conn.Close()
		if !ok {
			return
		}
	} else {
		_ = conn.Close()
		d.add("tls", stepSkip, 0, "", "ws:// URL: no TLS (use wss:// across the internet)")
	}

	// Authentication, upgrade and subprotocol: one real dial.
	t0 := time.Now()
	sess, err := client.Dial(ctx, cfg)
	took := time.Since(t0)
	if err != nil {
		d.dialFailed(err, took)
		return
	}
	defer sess.Close()
	d.reportSession(cfg, u.Scheme, sess, took)

	if !d.checkTarget(ctx, sess) {
		return
	}
	if sess.Raw() {
		d.add("rtt", stepSkip, 0, "", "raw mode has no pings")
		d.add("probe", stepSkip, 0, "", "raw mode has no pings, and its one connection is spent")
		return
	}
	if !d.checkRTT(sess) {
		return
	}
	d.probe(ctx, sess)
}

// checkURL expands --url for the host and builds the rest of the dial
// configuration; ok is false when a flag is wrong.
func (d *doctor) checkURL() (cfg client.Config, ok bool) {
	c := d.c
	tmpl := c.String("url")
	cfg, err := clientConfig(c, d.report.Host)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fix := "correct the flag or environment variable named above"
		if errors.Is(err, client.ErrBadURL) {
			fix = "pass the sandbox id as HOST (`sandmux doctor abc123`), or a --url such as " + client.DefaultURLTemplate
		}
		d.add("url", stepFail, 0, fix, "%v", err)
		return cfg, false
	}
	d.report.URL = client.RedactURL(cfg.URL)
	status, note := stepPass, ""
	if d.hostHint = doubledSuffixHint(tmpl, d.report.Host, c.String("strip-suffix")); d.hostHint != "" {
		status, note = stepWarn, "; "+d.hostHint
	}
	if strings.Contains(tmpl, "{host}") && !strings.ContainsAny(tmpl, "@?") {
		d.add("url", status, 0, "", "%s (from %s)%s", d.report.URL, tmpl, note)
	} else {
		d.add("url", status, 0, "", "%s%s", d.report.URL, note)
	}
	if !c.Bool("verbose") {
		cfg.Logger = nil // the steps say what went wrong
	}
	cfg.DialTimeout = d.timeout
	return cfg, true
}

// proxyKind names the proxy p's protocol for the doctor's lines.
func proxyKind(p *neturl.URL) string {
	if strings.HasPrefix(p.Scheme, "socks") {
		return "SOCKS proxy"
	}
	return "HTTP proxy" // http:// or https://, a CONNECT either way
}

// checkDNS resolves hostname, unless a proxy will (an HTTP or socks5h://
// one; with socks5:// the client resolves it) or it is an IP address.
func (d *doctor) checkDNS(ctx context.Context, cfg client.Config, hostname string) bool {
	if cfg.Proxy != nil && cfg.Proxy.Scheme != "socks5" {
		d.add("dns", stepSkip, 0, "", "%s is resolved by the %s %s (HTTPS_PROXY, HTTP_PROXY or ALL_PROXY)", hostname, proxyKind(cfg.Proxy), client.RedactProxy(cfg.Proxy))
		return true
	}
	if ip := net.ParseIP(hostname); ip != nil {
		d.add("dns", stepPass, 0, "", "%s is an IP address; nothing to resolve", hostname)
		return true
	}
	sctx, cancel := d.stepCtx(ctx)
	t0 := time.Now()
	addrs, err := net.DefaultResolver.LookupHost(sctx, hostname)
	cancel()
	if err != nil {
		d.add("dns", stepFail, time.Since(t0),
			"check the host name and the sandbox id, that the sandbox exists and runs, and your network's DNS",
			"cannot resolve %s: %s", hostname, dnsReason(err))
		return false
	}
	d.add("dns", stepPass, time.Since(t0), "", "%s -> %s", hostname, strings.Join(addrs, ", "))
	return true
}

// checkTCP connects to addr (through the proxy, if any); the caller
// closes the connection.
func (d *doctor) checkTCP(ctx context.Context, cfg client.Config, addr, port string) (net.Conn, bool) {
	sctx, cancel := d.stepCtx(ctx)
	t0 := time.Now()
	conn, err := client.DialTCP(sctx, cfg, addr)
	cancel()
	if err != nil {
		var pe *client.ProxyError
		switch {
		case errors.As(err, &pe):
			d.add("tcp", stepFail, time.Since(t0), pe.Hint(), "%v", err)
		case errnoIs(err, syscall.ECONNREFUSED):
			d.add("tcp", stepFail, time.Since(t0),
				fmt.Sprintf("nothing listens on port %s there: check the port in --url and that `sandmux server` runs (it listens on 8081)", port),
				"%s refused the connection", addr)
		case isTimeout(err):
			d.add("tcp", stepFail, time.Since(t0),
				fmt.Sprintf("a firewall or proxy may drop port %s; check your network", port),
				"connecting to %s timed out", addr)
		default:
			d.add("tcp", stepFail, time.Since(t0), "check your network and the URL", "connecting to %s: %v", addr, err)
		}
		return nil, false
	}
	if cfg.Proxy != nil {
		d.add("tcp", stepPass, time.Since(t0), "", "connected to %s through %s %s", addr, proxyKind(cfg.Proxy), client.RedactProxy(cfg.Proxy))
	} else {
		d.add("tcp", stepPass, time.Since(t0), "", "connected to %s", conn.RemoteAddr())
	}
	return conn, true
}

// reportSession records what the dial that made sess showed: the
// credentials were accepted, the upgrade's time, and the subprotocol the
// server picked (a raw bridge degrades the verdict).
func (d *doctor) reportSession(cfg client.Config, scheme string, sess *client.Session, took time.Duration) {
	switch {
	case cfg.Token != "":
		d.add("auth", stepPass, 0, "", "token accepted")
	case len(cfg.Header) > 0:
		d.add("auth", stepPass, 0, "", "accepted (with your --header values)")
	default:
		d.add("auth", stepPass, 0, "", "accepted without credentials")
	}
	if scheme == "wss" {
		d.add("upgrade", stepPass, took, "", "101 Switching Protocols (timed over a fresh connection: TCP, TLS and upgrade)")
	} else {
		d.add("upgrade", stepPass, took, "", "101 Switching Protocols (timed over a fresh connection: TCP and upgrade)")
	}
	switch {
	case sess.Resumable():
		d.add("protocol", stepPass, 0, "", "%s: shared sessions that resume after a lost WebSocket", mux.SubprotocolResumable)
	case sess.Mux() != nil:
		d.add("protocol", stepPass, 0, "", "%s: shared sessions; they do not resume (an older server, or --resume-grace 0)", mux.Subprotocol)
	default:
		d.add("protocol", stepWarn, 0, "", "none: the server picked no sandmux subprotocol, so it is a raw WebSocket bridge (websocat or alike)")
		d.degraded = d.report.URL + " is a raw WebSocket bridge, not `sandmux server`: each connection needs a WebSocket of its own, nothing is shared or resumed"
		d.degFix = "run `sandmux server` in the sandbox in place of websocat (README: Migrating from websocat)"
	}
	d.add("version", stepSkip, 0, "", "not reported: the sandmux protocol does not carry the server's version")
}

// checkTLS handshakes on conn and reports the certificate.
func (d *doctor) checkTLS(ctx context.Context, conn net.Conn, base *tls.Config, hostname string) bool {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		tc = base.Clone()
	}
	tc.ServerName = hostname
	tc.NextProtos = []string{"http/1.1"}
	tconn := tls.Client(conn, tc)
	sctx, cancel := d.stepCtx(ctx)
	defer cancel()
	t0 := time.Now()
	err := tconn.HandshakeContext(sctx)
	took := time.Since(t0)
	if err != nil {
		var ve *tls.CertificateVerificationError
		if errors.As(err, &ve) && len(ve.UnverifiedCertificates) > 0 {
			d.add("tls", stepFail, took,
				"pass the server's CA with --ca FILE, or --insecure to skip verification (testing only)",
				"certificate %s not trusted: %s", certText(ve.UnverifiedCertificates[0]), trustReason(ve.Err))
			return false
		}
		d.add("tls", stepFail, took, "is that port serving TLS? A plain server needs a ws:// URL",
			"TLS handshake failed: %v", err)
		return false
	}
	st := tconn.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		d.add("tls", stepWarn, took, "", "%s, but the server sent no certificate", tls.VersionName(st.Version))
		return true
	}
	cert := st.PeerCertificates[0]
	left := time.Until(cert.NotAfter)
	status, note := stepPass, ""
	switch {
	case tc.InsecureSkipVerify && left <= 0:
		status, note = stepWarn, "; EXPIRED (accepted only because of --insecure)"
	case tc.InsecureSkipVerify:
		status, note = stepWarn, "; not verified (--insecure)"
	case left < 14*24*time.Hour:
		status, note = stepWarn, "; expires soon"
	}
	d.add("tls", status, took, "", "%s, certificate %s, expires %s (%s)%s",
		tls.VersionName(st.Version), certText(cert), cert.NotAfter.UTC().Format("2006-01-02"), plural(int(left.Hours()/24), "day"), note)
	return true
}

// dialFailed words a failed client.Dial as the auth or upgrade step.
func (d *doctor) dialFailed(err error, took time.Duration) {
	var de *client.DialError
	if !errors.As(err, &de) || de.StatusCode == 0 {
		fix := "check the URL and your network"
		switch {
		case errors.Is(err, client.ErrNotHTTP):
			fix = "that port speaks another protocol: put `sandmux server`'s port in --url (it listens on 8081)"
		case errors.Is(err, client.ErrTLSPort):
			fix = "that port speaks TLS: write wss://, not ws://, in --url"
		}
		d.add("auth", stepSkip, 0, "", "not reached")
		d.add("upgrade", stepFail, took, fix, "%v", err)
		return
	}
	switch de.StatusCode {
	case http.StatusUnauthorized:
		fix := "pass the token `sandmux server` was started with: --token-file FILE, SANDMUX_TOKEN or --token TOKEN"
		if d.c.String("token") != "" || d.c.String("token-file") != "" {
			fix = "the token is wrong: use the one `sandmux server` was started with (--token, --token-file or SANDMUX_TOKEN)"
		}
		d.add("auth", stepFail, took, fix, "%d %s: the server refused the credentials", de.StatusCode, http.StatusText(de.StatusCode))
		return
	case http.StatusForbidden:
		d.add("auth", stepFail, took,
			"check --token/SANDMUX_TOKEN and --header values such as 'e2b-traffic-access-token: TOKEN' (restricted sandboxes)",
			"%d %s: %s", de.StatusCode, http.StatusText(de.StatusCode), cmp.Or(de.Edge, "the server or its edge refused the credentials"))
		return
	}
	d.add("auth", stepSkip, 0, "", "not reached: the upgrade failed first")
	var fix string
	switch code := de.StatusCode; {
	case code == http.StatusBadRequest:
		fix = "client and server speak no common protocol version: update the older sandmux"
	case code == http.StatusServiceUnavailable && de.Detail != "":
		fix = "the server is at a limit or shutting down (see its reason above)"
	case code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
		fix = "the edge cannot reach that port in the sandbox: is `sandmux server` running there, on the port in --url? (a paused or stopped sandbox looks like this too)"
	case code == http.StatusNotFound:
		fix = "check the URL and that the sandbox exists; a plain web server at that port answers 404 too"
	case code == http.StatusConflict:
		fix = "the sandbox is paused or changing state: resume it (E2B: Sandbox.connect), or try again in a moment"
	case code == http.StatusTooManyRequests:
		fix = "the edge limits connections to the sandbox: close some, or try again in a moment"
	case code < 400:
		fix = "that is a plain HTTP server, not a WebSocket endpoint: check the port in --url (`sandmux server` listens on 8081)"
	default:
		fix = "the server or an edge proxy refused the WebSocket upgrade; check the URL"
	}
	// An edge's own message (E2B: "The sandbox was not found") says more
	// than that the upgrade failed.
	d.add("upgrade", stepFail, took, fix, "%d %s: %s", de.StatusCode, http.StatusText(de.StatusCode), cmp.Or(de.Edge, "no WebSocket upgrade"))
}

// checkTarget opens a stream to the target and reads its SSH banner.
func (d *doctor) checkTarget(ctx context.Context, sess *client.Session) bool {
	target := d.c.String("target")
	name := target
	if name == "" {
		name = "the default target"
	}
	sctx, cancel := d.stepCtx(ctx)
	defer cancel()
	t0 := time.Now()
	st, err := sess.OpenStream(sctx, target)
	if err != nil {
		d.add("target", stepFail, time.Since(t0), targetFix(err, "--target", target != ""), "%v", err)
		return false
	}
	defer st.Close()
	_ = st.SetReadDeadline(time.Now().Add(d.timeout))
	line, err := bufio.NewReaderSize(io.LimitReader(st, 256), 256).ReadSlice('\n')
	took := time.Since(t0)
	banner := strings.TrimRight(string(line), "\r\n")
	switch {
	case strings.HasPrefix(banner, "SSH-2.0-") || strings.HasPrefix(banner, "SSH-1.99-"):
		d.add("target", stepPass, took, "", "stream to %s; its banner: %s", name, banner)
		return true
	case len(line) > 0:
		d.notSSH = name
		d.add("target", stepWarn, took, "", "stream to %s, which answered, but not with an SSH banner: %q", name, banner)
		return true
	case errors.Is(err, io.EOF):
		d.add("target", stepFail, took,
			"sshd may be refusing connections (MaxStartups, PerSourcePenalties): see its log in the sandbox",
			"%s closed the stream without an SSH banner", name)
	case target != "" && isTimeout(err):
		// A service whose client speaks first (HTTP, PostgreSQL, Redis)
		// says nothing: the stream to it is what a forward needs.
		d.notSSH = name
		d.add("target", stepWarn, took, "", "stream to %s opened; it sent nothing within %s (no SSH banner; fine for a service whose client speaks first)", name, d.timeout)
		return true
	default:
		d.add("target", stepFail, took,
			"is the target an SSH server? check `sandmux server --target` (and --target here)",
			"%s sent no SSH banner within %s", name, d.timeout)
	}
	return false
}

// targetFix is the fix for a stream that failed; flag is the one that
// named its target.
func targetFix(err error, flag string, explicit bool) string {
	var se *mux.StreamError
	switch {
	case errors.Is(err, client.ErrRawTarget):
		return "drop --target, or run `sandmux server` in the sandbox: a raw bridge reaches only its one target"
	case !errors.As(err, &se):
		return "the session failed while opening a stream; run again with -v"
	}
	switch se.Status {
	case mux.StatusRefused:
		if explicit {
			return "nothing listens on " + cmp.Or(se.Target, "that port") + " in the sandbox: start the service there, or check " + flag
		}
		return "start sshd in the sandbox, or point `sandmux server --target` at the port it listens on"
	case mux.StatusNotAllowed:
		return "start `sandmux server` with --allow " + se.Target + ", or drop " + flag
	case mux.StatusUnreachable:
		return "check the target host and port given to `sandmux server` (--target, --allow)"
	case mux.StatusLimit:
		return "close some connections to this sandbox, or raise the server's --max-streams or --max-total-streams (the refusal says which)"
	}
	return "see the server's log"
}

// checkRTT times a few pings.
func (d *doctor) checkRTT(sess *client.Session) bool {
	const n = 5
	var rtts []time.Duration
	for range n {
		rtt, err := sess.Mux().Ping()
		if err != nil {
			d.add("rtt", stepFail, 0, "the session stopped answering: something on the path stalls or drops WebSocket frames", "%v", err)
			return false
		}
		rtts = append(rtts, rtt)
	}
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	var sum time.Duration
	for _, r := range rtts {
		sum += r
	}
	d.add("rtt", stepPass, 0, "", "%d pings: min %s, avg %s, max %s", n, roundDur(rtts[0]), roundDur(sum/n), roundDur(rtts[n-1]))
	return true
}

// probe measures latency for --probe with back-to-back pings, or, with
// --probe-target, throughput through an echo service. sshd never gets
// test data: it would log (and may penalise) a client speaking garbage,
// and the penalty would fall on every tunnel user at once.
func (d *doctor) probe(ctx context.Context, sess *client.Session) {
	dur := d.c.Duration("probe")
	if dur <= 0 {
		d.add("probe", stepSkip, 0, "", "--probe 0")
		return
	}
	if pt := d.c.String("probe-target"); pt != "" {
		d.probeEcho(ctx, sess, pt, dur)
		return
	}
	var rtts []time.Duration
	end := time.Now().Add(dur)
	for time.Now().Before(end) && ctx.Err() == nil {
		rtt, err := sess.Mux().Ping()
		if err != nil {
			d.add("probe", stepFail, 0, "the session stopped answering under load: something on the path stalls WebSocket frames", "%v", err)
			return
		}
		rtts = append(rtts, rtt)
	}
	if len(rtts) == 0 {
		d.add("probe", stepSkip, 0, "", "interrupted")
		return
	}
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	pct := func(p float64) time.Duration { return rtts[min(len(rtts)-1, int(float64(len(rtts))*p))] }
	d.add("probe", stepPass, dur, "", "latency: %d pings back to back, p50 %s, p99 %s, max %s; throughput not measured (pass --probe-target with an allowlisted echo service)",
		len(rtts), roundDur(pct(0.5)), roundDur(pct(0.99)), roundDur(rtts[len(rtts)-1]))
}

// probeEcho streams a pseudo-random sequence through an echo target for
// dur and checks what comes back.
func (d *doctor) probeEcho(ctx context.Context, sess *client.Session, target string, dur time.Duration) {
	sctx, cancel := d.stepCtx(ctx)
	st, err := sess.OpenStream(sctx, target)
	cancel()
	if err != nil {
		d.add("probe", stepFail, 0, targetFix(err, "--probe-target", true), "%v", err)
		return
	}
	defer st.Close()
	seed := [32]byte{'s', 'a', 'n', 'd', 'm', 'u', 'x'}
	t0 := time.Now()
	wrote := make(chan error, 1)
	go func() {
		src := rand.NewChaCha8(seed)
		buf := make([]byte, 32<<10)
		for time.Since(t0) < dur && ctx.Err() == nil {
			_, _ = src.Read(buf)
			if _, err := st.Write(buf); err != nil {
				wrote <- err
				return
			}
		}
		if cw, ok := st.(interface{ CloseWrite() error }); ok {
			wrote <- cw.CloseWrite()
			return
		}
		wrote <- nil
	}()
	_ = st.SetReadDeadline(time.Now().Add(dur + d.timeout))
	want := rand.NewChaCha8(seed)
	got, exp := make([]byte, 64<<10), make([]byte, 64<<10)
	var n int64
	var rerr error
	for {
		m, err := st.Read(got)
		if m > 0 {
			_, _ = want.Read(exp[:m])
			if !bytes.Equal(got[:m], exp[:m]) {
				rerr = fmt.Errorf("%s is not an echo service: the bytes that came back differ", target)
				break
			}
			n += int64(m)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				rerr = err
			}
			break
		}
	}
	took := time.Since(t0)
	_ = st.Close()
	werr := <-wrote
	if rerr == nil && werr != nil {
		rerr = werr
	}
	if rerr != nil {
		d.add("probe", stepFail, took, "check --probe-target: it must be an echo service that `sandmux server` allows", "%v", rerr)
		return
	}
	mib := float64(n) / (1 << 20)
	d.add("probe", stepPass, took, "", "throughput through %s: %.1f MiB echoed in %s, %.1f MiB/s each way", target, mib, roundDur(took), mib/took.Seconds())
}

func certText(c *x509.Certificate) string {
	subject := c.Subject.CommonName
	if subject == "" && len(c.DNSNames) > 0 {
		subject = c.DNSNames[0]
	}
	issuer := c.Issuer.CommonName
	if issuer == "" && len(c.Issuer.Organization) > 0 {
		issuer = c.Issuer.Organization[0]
	}
	// Written by whoever answered (a hostile network's own certificate).
	return fmt.Sprintf("CN=%s (issuer %s)", client.Printable(subject), client.Printable(issuer))
}

func trustReason(err error) string {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return "signed by an unknown authority"
	case errors.As(err, &hn):
		return "not valid for this host name"
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return "expired or not yet valid"
	}
	return err.Error()
}

func dnsReason(err error) string {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		if dns.IsNotFound {
			return "no such host"
		}
		if dns.IsTimeout {
			return "the resolver timed out"
		}
		return dns.Err
	}
	return err.Error()
}

// roundDur keeps three significant figures or so.
func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// isTimeout reports whether err is a deadline that passed.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
