// Package metrics exports a sandmux server's counters to Prometheus. It
// is a separate package so that the server itself knows nothing of
// metrics: everything here reads server.Stats when scraped, plus a
// handshake histogram fed through server.Config.OnHandshake.
//
//	m := metrics.New()
//	cfg.OnHandshake = m.ObserveHandshake
//	srv, _ := server.New(cfg)
//	m.SetSource(srv.Stats)
//	http.Handle("/metrics", m.Handler()) // on a private listener
//
// It writes the Prometheus text format itself, with the standard library
// only, rather than use the Prometheus client library: the sandmux binary
// links this package, and every ssh connection starts that binary as a
// `sandmux proxy`, which paid the client library's package init and page
// faults (milliseconds, where page faults are dear) on every start while
// only `sandmux server --metrics-listen` ever uses it. Everything is
// computed at scrape time; the package starts no goroutines and does no
// work at init.
//
// Besides the sandmux_ families, a scrape carries the Go runtime and
// process metrics of client_golang's Go and process collectors, under
// their names and help texts, so that existing dashboards keep working:
// go_goroutines, go_threads, go_info, go_gc_duration_seconds (the pause
// summary, from runtime/debug.ReadGCStats), go_gc_gomemlimit_bytes,
// go_sched_gomaxprocs_threads, the go_memstats_ gauges and counters (from
// runtime.ReadMemStats; see memstat for why not runtime/metrics), and, on
// Linux only, the process_ metrics read from /proc/self (see
// process_linux.go). go_gc_gogc_percent is left out: only runtime/metrics
// reads it.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sandmux/sandmux/server"
)

// Refusal reasons, the values of the reason label of
// sandmux_refusals_total.
const (
	ReasonAuth             = "auth"               // 401: missing or wrong token
	ReasonProtocol         = "protocol"           // 400: only unknown sandmux versions offered
	ReasonSessionLimit     = "session_limit"      // 503: --max-sessions
	ReasonStreamLimit      = "stream_limit"       // stream refused at --max-streams or --max-total-streams
	ReasonTargetNotAllowed = "target_not_allowed" // stream asked for a target not --allow'ed
	ReasonTargetFailed     = "target_failed"      // the target refused or was unreachable
	ReasonResume           = "resume"             // a resume naming an unknown session, or with a wrong secret or credentials
	ReasonHandshakeLimit   = "handshake_limit"    // 503 or closed: --max-handshakes connections were in their handshake
)

// handshakeBuckets are the upper bounds of
// sandmux_handshake_duration_seconds: from half a millisecond (a loopback
// upgrade) to ten seconds (a client on the far side of a bad link).
var handshakeBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Metrics exposes a server's Stats, a histogram of its handshakes, and
// the Go runtime's and the process's metrics, in the Prometheus text
// format. Its methods are safe for concurrent use.
type Metrics struct {
	mu     sync.Mutex
	source func() server.Stats

	handshake *histogram
}

// New returns Metrics with no source yet: until SetSource, scrapes carry
// only the handshake histogram and the runtime and process metrics.
func New() *Metrics {
	return &Metrics{handshake: newHistogram(handshakeBuckets)}
}

// SetSource names the function scrapes read, normally a server's Stats.
// It is separate from New because the server is built after its Config,
// whose OnHandshake already needs the Metrics.
func (m *Metrics) SetSource(f func() server.Stats) {
	m.mu.Lock()
	m.source = f
	m.mu.Unlock()
}

// ObserveHandshake records one handshake; it fits server.Config.OnHandshake.
func (m *Metrics) ObserveHandshake(mode string, d time.Duration) {
	m.handshake.observe(mode, d.Seconds())
}

// Handler serves a scrape in the Prometheus text format, version 0.0.4.
// It ignores the request's Accept header: every scraper accepts that
// format, so there is nothing to negotiate.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := m.collect().render()
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body) // a scraper gone away is nobody's to hear about
	})
}

// collect gathers one scrape.
func (m *Metrics) collect() *exposition {
	e := &exposition{}
	m.mu.Lock()
	src := m.source
	m.mu.Unlock()
	if src != nil {
		writeStats(e, src())
	}
	m.handshake.write(e.family("sandmux_handshake_duration_seconds",
		"Time from a WebSocket request's arrival to its session's start (upgrade, and the sandmux.v2 hello), by mode.",
		typeHistogram), "mode")
	writeGoRuntime(e)
	writeProcess(e)
	return e
}

// writeStats adds the sandmux_ families read from st.
func writeStats(e *exposition, st server.Stats) {
	e.family("sandmux_sessions_active", "Sandmux sessions open now.", typeGauge).
		add("", float64(st.ActiveSessions))
	f := e.family("sandmux_sessions_total", "WebSockets upgraded, by mode (sandmux or raw).", typeCounter)
	f.add("", float64(st.RawSessions), "mode", "raw")
	// Stats reads the two totals one after the other: a raw upgrade in
	// between must not show as a counter going back.
	f.add("", float64(max(st.Sessions-st.RawSessions, 0)), "mode", "sandmux")
	// Raw connections carry no session and no stream: without a family
	// of their own, websocat clients were invisible on a dashboard.
	e.family("sandmux_raw_connections_active", "Raw-mode (websocat) connections open now, each a WebSocket spliced to the default target; sandmux_sessions_total{mode=\"raw\"} counts them all.", typeGauge).
		add("", float64(st.ActiveRaw))
	e.family("sandmux_streams_active", "Streams open now.", typeGauge).
		add("", float64(st.ActiveStreams))
	e.family("sandmux_streams_total", "Streams opened, refused ones included.", typeCounter).
		add("", float64(st.Streams))
	f = e.family("sandmux_bytes_total", "Bytes sandmux sessions received (in) and sent (out) on their WebSockets.", typeCounter)
	f.add("", float64(st.BytesIn), "direction", "in")
	f.add("", float64(st.BytesOut), "direction", "out")
	// In the order of the reasons' names, as client_golang sorted them.
	f = e.family("sandmux_refusals_total", "Refused connections (at the handshake limit), upgrades, resumes and streams, by reason.", typeCounter)
	f.add("", float64(st.RefusedAuth), "reason", ReasonAuth)
	f.add("", float64(st.RefusedHandshakes), "reason", ReasonHandshakeLimit)
	f.add("", float64(st.RefusedProtocol), "reason", ReasonProtocol)
	f.add("", float64(st.RefusedResumes), "reason", ReasonResume)
	f.add("", float64(st.RefusedSessions), "reason", ReasonSessionLimit)
	f.add("", float64(st.RefusedStreams), "reason", ReasonStreamLimit)
	f.add("", float64(st.TargetErrors), "reason", ReasonTargetFailed)
	f.add("", float64(st.RefusedTargets), "reason", ReasonTargetNotAllowed)
	e.family("sandmux_resumptions_total", "Sessions resumed on a new WebSocket.", typeCounter).
		add("", float64(st.Resumes))
	e.family("sandmux_receive_buffer_bytes", "Bytes of --max-receive-buffer that streams' grown receive windows hold now (granted to clients, or received and not yet read by targets).", typeGauge).
		add("", float64(st.ReceiveBufferInUse))
	e.family("sandmux_receive_buffer_limit_bytes", "--max-receive-buffer: the bound on all sessions' receive windows beyond each stream's first; 0 means none.", typeGauge).
		add("", float64(st.ReceiveBufferLimit))
	e.family("sandmux_resume_buffer_bytes", "Bytes of --max-resume-buffer that resumable sessions hold sent to clients and not yet acknowledged.", typeGauge).
		add("", float64(st.ResumeBufferInUse))
	e.family("sandmux_resume_buffer_limit_bytes", "--max-resume-buffer: the bound on all resumable sessions' unacknowledged bytes; 0 means none.", typeGauge).
		add("", float64(st.ResumeBufferLimit))
}
