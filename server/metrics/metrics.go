// Package metrics exports a sandmux server's counters to Prometheus. It
// is a separate package so that the server itself does not depend on the
// Prometheus client: everything here reads server.Stats when scraped, plus
// a handshake histogram fed through server.Config.OnHandshake.
//
//	m := metrics.New()
//	cfg.OnHandshake = m.ObserveHandshake
//	srv, _ := server.New(cfg)
//	m.SetSource(srv.Stats)
//	http.Handle("/metrics", m.Handler()) // on a private listener
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sandmux/sandmux/server"
)

// Refusal reasons, the values of the reason label of
// sandmux_refusals_total.
const (
	ReasonAuth             = "auth"               // 401: missing or wrong token
	ReasonProtocol         = "protocol"           // 400: only unknown sandmux versions offered
	ReasonSessionLimit     = "session_limit"      // 503: --max-sessions
	ReasonStreamLimit      = "stream_limit"       // stream refused at --max-streams
	ReasonTargetNotAllowed = "target_not_allowed" // stream asked for a target not --allow'ed
	ReasonTargetFailed     = "target_failed"      // the target refused or was unreachable
)

// Metrics is a prometheus.Collector over a server's Stats, with its own
// registry.
type Metrics struct {
	mu     sync.Mutex
	source func() server.Stats

	handshake *prometheus.HistogramVec
	reg       *prometheus.Registry

	sessionsActive, sessionsTotal, streamsActive, streamsTotal *prometheus.Desc
	bytes, refusals, resumptions                               *prometheus.Desc
}

// New returns Metrics registered, with the Go runtime and process
// collectors, in a registry of their own.
func New() *Metrics {
	m := &Metrics{
		handshake: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sandmux_handshake_duration_seconds",
			Help:    "Time from a WebSocket request's arrival to its session's start (upgrade, and the sandmux.v2 hello), by mode.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"mode"}),
		sessionsActive: prometheus.NewDesc("sandmux_sessions_active", "Sandmux sessions open now.", nil, nil),
		sessionsTotal:  prometheus.NewDesc("sandmux_sessions_total", "WebSockets upgraded, by mode (sandmux or raw).", []string{"mode"}, nil),
		streamsActive:  prometheus.NewDesc("sandmux_streams_active", "Streams open now.", nil, nil),
		streamsTotal:   prometheus.NewDesc("sandmux_streams_total", "Streams opened, refused ones included.", nil, nil),
		bytes:          prometheus.NewDesc("sandmux_bytes_total", "Bytes sandmux sessions received (in) and sent (out) on their WebSockets.", []string{"direction"}, nil),
		refusals:       prometheus.NewDesc("sandmux_refusals_total", "Refused upgrades and streams, by reason.", []string{"reason"}, nil),
		resumptions:    prometheus.NewDesc("sandmux_resumptions_total", "Sessions resumed on a new WebSocket.", nil, nil),
	}
	m.reg = prometheus.NewRegistry()
	m.reg.MustRegister(m, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SetSource names the function scrapes read, normally a server's Stats.
func (m *Metrics) SetSource(f func() server.Stats) {
	m.mu.Lock()
	m.source = f
	m.mu.Unlock()
}

// ObserveHandshake records one handshake; it fits server.Config.OnHandshake.
func (m *Metrics) ObserveHandshake(mode string, d time.Duration) {
	m.handshake.WithLabelValues(mode).Observe(d.Seconds())
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.sessionsActive, m.sessionsTotal, m.streamsActive, m.streamsTotal, m.bytes, m.refusals, m.resumptions} {
		ch <- d
	}
	m.handshake.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	src := m.source
	m.mu.Unlock()
	if src != nil {
		st := src()
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
		}
		counter := func(d *prometheus.Desc, v int64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
		}
		gauge(m.sessionsActive, float64(st.ActiveSessions))
		counter(m.sessionsTotal, st.Sessions-st.RawSessions, "sandmux")
		counter(m.sessionsTotal, st.RawSessions, "raw")
		gauge(m.streamsActive, float64(st.ActiveStreams))
		counter(m.streamsTotal, st.Streams)
		counter(m.bytes, st.BytesIn, "in")
		counter(m.bytes, st.BytesOut, "out")
		counter(m.refusals, st.RefusedAuth, ReasonAuth)
		counter(m.refusals, st.RefusedProtocol, ReasonProtocol)
		counter(m.refusals, st.RefusedSessions, ReasonSessionLimit)
		counter(m.refusals, st.RefusedStreams, ReasonStreamLimit)
		counter(m.refusals, st.RefusedTargets, ReasonTargetNotAllowed)
		counter(m.refusals, st.TargetErrors, ReasonTargetFailed)
		counter(m.resumptions, st.Resumes)
	}
	m.handshake.Collect(ch)
}
