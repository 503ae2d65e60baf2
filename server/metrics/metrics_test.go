package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sandmux/sandmux/server"
	"github.com/sandmux/sandmux/server/metrics"
)

func TestExposition(t *testing.T) {
	m := metrics.New()
	m.SetSource(func() server.Stats {
		return server.Stats{
			Sessions: 7, RawSessions: 2, ActiveSessions: 3, Streams: 40, ActiveStreams: 5, Resumes: 4,
			RefusedSessions: 1, RefusedStreams: 2, RefusedAuth: 3, RefusedProtocol: 4, RefusedTargets: 5, TargetErrors: 6,
			BytesIn: 1000, BytesOut: 2000,
		}
	})
	m.ObserveHandshake("sandmux.v2", 3*time.Millisecond)
	m.ObserveHandshake("sandmux.v2", 2*time.Second)
	m.ObserveHandshake("raw", time.Millisecond)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	text := string(b)
	for _, want := range []string{
		"sandmux_sessions_active 3\n",
		`sandmux_sessions_total{mode="sandmux"} 5` + "\n",
		`sandmux_sessions_total{mode="raw"} 2` + "\n",
		"sandmux_streams_active 5\n",
		"sandmux_streams_total 40\n",
		"sandmux_resumptions_total 4\n",
		`sandmux_bytes_total{direction="in"} 1000` + "\n",
		`sandmux_bytes_total{direction="out"} 2000` + "\n",
		`sandmux_refusals_total{reason="session_limit"} 1` + "\n",
		`sandmux_refusals_total{reason="stream_limit"} 2` + "\n",
		`sandmux_refusals_total{reason="auth"} 3` + "\n",
		`sandmux_refusals_total{reason="protocol"} 4` + "\n",
		`sandmux_refusals_total{reason="target_not_allowed"} 5` + "\n",
		`sandmux_refusals_total{reason="target_failed"} 6` + "\n",
		`sandmux_handshake_duration_seconds_count{mode="sandmux.v2"} 2` + "\n",
		`sandmux_handshake_duration_seconds_bucket{mode="sandmux.v2",le="0.005"} 1` + "\n",
		`sandmux_handshake_duration_seconds_count{mode="raw"} 1` + "\n",
		"# TYPE sandmux_streams_total counter\n",
		"# TYPE sandmux_streams_active gauge\n",
		"go_goroutines ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("exposition:\n%s", text)
	}
}

func TestNoSourceYet(t *testing.T) {
	m := metrics.New()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || strings.Contains(rec.Body.String(), "sandmux_sessions_active") {
		t.Fatalf("before SetSource: %d\n%s", rec.Code, rec.Body.String())
	}
}
