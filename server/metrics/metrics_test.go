package metrics_test

import (
	"fmt"
	"io"
	"math"
	"net/http/httptest"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandmux/sandmux/server"
	"github.com/sandmux/sandmux/server/metrics"
)

func TestExposition(t *testing.T) {
	m := metrics.New()
	m.SetSource(func() server.Stats {
		return server.Stats{
			Sessions: 7, RawSessions: 2, ActiveSessions: 3, ActiveRaw: 1, Streams: 40, ActiveStreams: 5, Resumes: 4,
			RefusedSessions: 1, RefusedStreams: 2, RefusedAuth: 3, RefusedProtocol: 4, RefusedTargets: 5, TargetErrors: 6, RefusedResumes: 8, RefusedHandshakes: 9,
			BytesIn: 1000, BytesOut: 2000, ReceiveBufferInUse: 3 << 20, ReceiveBufferLimit: 1 << 30,
			ResumeBufferInUse: 5 << 20, ResumeBufferLimit: 1 << 29,
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
		"sandmux_raw_connections_active 1\n",
		`sandmux_sessions_total{mode="sandmux"} 5` + "\n",
		`sandmux_sessions_total{mode="raw"} 2` + "\n",
		"sandmux_streams_active 5\n",
		"sandmux_streams_total 40\n",
		"sandmux_resumptions_total 4\n",
		"sandmux_receive_buffer_bytes 3.145728e+06\n",
		"sandmux_receive_buffer_limit_bytes 1.073741824e+09\n",
		"sandmux_resume_buffer_bytes 5.24288e+06\n",
		"sandmux_resume_buffer_limit_bytes 5.36870912e+08\n",
		`sandmux_bytes_total{direction="in"} 1000` + "\n",
		`sandmux_bytes_total{direction="out"} 2000` + "\n",
		`sandmux_refusals_total{reason="session_limit"} 1` + "\n",
		`sandmux_refusals_total{reason="stream_limit"} 2` + "\n",
		`sandmux_refusals_total{reason="auth"} 3` + "\n",
		`sandmux_refusals_total{reason="protocol"} 4` + "\n",
		`sandmux_refusals_total{reason="target_not_allowed"} 5` + "\n",
		`sandmux_refusals_total{reason="target_failed"} 6` + "\n",
		`sandmux_refusals_total{reason="resume"} 8` + "\n",
		`sandmux_refusals_total{reason="handshake_limit"} 9` + "\n",
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

// scrape serves one scrape of m and checks it with checkExposition.
func scrape(t *testing.T, m *metrics.Metrics) exposition {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Errorf("scrape: status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	return checkExposition(t, rec.Body.String())
}

// reporter is the part of *testing.T checkExposition uses, so that
// TestCheckerRejects can see it fail.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
	Failed() bool
}

// exposition is a checked scrape.
type exposition struct {
	text   string
	types  map[string]string  // family name -> TYPE
	series map[string]float64 // `name{l="v",...}` as written -> value
	// samples in order, labels unescaped, for the tests that need
	// label values back.
	samples []sample
}

type sample struct {
	family, name string
	labels       map[string]string
	value        float64
}

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// checkExposition is a strict checker of the text format 0.0.4 as this
// package writes it, stricter than Prometheus's own parser where that is
// lenient: every line is a # HELP, a # TYPE or a sample `name{labels}
// value` with no timestamp; each family has exactly one HELP and one TYPE,
// in that order, before its samples, which follow contiguously; sample
// names are the family's, plus _bucket/_sum/_count for histograms and
// _sum/_count for summaries; label values use only the \\, \" and \n
// escapes; no series appears twice; histograms' buckets rise in le and
// count, end in le="+Inf", which equals _count; the text ends in a
// newline. It reports to t the first violation of each line. (It does
// not stop the test, so that it may run off the test's goroutine.)
func checkExposition(t reporter, text string) exposition {
	t.Helper()
	e := exposition{text: text, types: map[string]string{}, series: map[string]float64{}}
	if text == "" || !strings.HasSuffix(text, "\n") {
		t.Errorf("exposition is empty or lacks its final newline:\n%s", text)
		return e
	}
	var (
		cur      string // family being read
		haveHelp bool
		done     = map[string]bool{} // families seen
	)
	// Per histogram series (labels but le): the last bucket seen.
	type bucketState struct {
		le, count float64
		inf       bool
	}
	buckets := map[string]*bucketState{}
	counts := map[string]float64{}

	for n, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		n++
		fail := func(format string, args ...any) {
			t.Helper()
			t.Errorf("line %d %q: %s", n, line, fmt.Sprintf(format, args...))
		}
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, help, ok := strings.Cut(rest, " ")
			switch {
			case !ok || help == "":
				fail("HELP without text")
			case !metricNameRE.MatchString(name):
				fail("bad metric name")
			case done[name]:
				fail("family %s again", name)
			case !validHelp(help):
				fail("bad escape in HELP")
			}
			cur, haveHelp, done[name] = name, true, true
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			switch {
			case name != cur || !haveHelp:
				fail("TYPE not right after its HELP")
			case e.types[name] != "":
				fail("second TYPE")
			}
			switch typ {
			case "counter", "gauge", "histogram", "summary":
				e.types[name] = typ
			default:
				fail("unknown type %q", typ)
			}
			continue
		}
		if strings.HasPrefix(line, "#") || line == "" {
			fail("neither HELP, TYPE nor a sample")
			continue
		}

		// A sample.
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			fail("no value")
			continue
		}
		series, vs := line[:sp], line[sp+1:]
		v, err := strconv.ParseFloat(vs, 64)
		if err != nil || (vs != "+Inf" && vs != "-Inf" && vs != "NaN" && strings.ContainsAny(vs, "IiNn")) {
			fail("value %q is not a float", vs)
			continue
		}
		name, labels, err := parseSeries(series)
		if err != nil {
			fail("%v", err)
			continue
		}
		typ := e.types[cur]
		if typ == "" {
			fail("sample before its family's TYPE")
			continue
		}
		suffix, ok := strings.CutPrefix(name, cur)
		switch {
		case !ok:
			fail("sample of family %s under %s", name, cur)
		case suffix == "":
			if typ == "histogram" {
				fail("histogram sample without _bucket/_sum/_count")
			}
			if _, q := labels["quantile"]; typ == "summary" && !q {
				fail("summary sample without a quantile")
			}
		case suffix == "_sum" || suffix == "_count":
			if typ != "histogram" && typ != "summary" {
				fail("%s on a %s", suffix, typ)
			}
		case suffix == "_bucket":
			if typ != "histogram" {
				fail("_bucket on a %s", typ)
			}
		default:
			fail("sample of family %s under %s", name, cur)
		}
		if _, dup := e.series[series]; dup {
			fail("duplicate series")
		}
		e.series[series] = v
		e.samples = append(e.samples, sample{family: cur, name: name, labels: labels, value: v})

		if typ != "histogram" {
			continue
		}
		key := seriesKey(cur, labels, "le")
		switch suffix {
		case "_bucket":
			les, ok := labels["le"]
			le, err := strconv.ParseFloat(les, 64)
			if !ok || err != nil {
				fail("bucket without a float le")
				continue
			}
			b := buckets[key]
			if b == nil {
				b = &bucketState{le: math.Inf(-1)}
				buckets[key] = b
			}
			if b.inf || le <= b.le || v < b.count {
				fail("bucket not after the previous one, or not cumulative")
			}
			b.le, b.count, b.inf = le, v, math.IsInf(le, 1)
		case "_count":
			counts[key] = v
		}
	}
	for key, b := range buckets {
		if !b.inf {
			t.Errorf("histogram %s lacks its le=\"+Inf\" bucket", key)
		} else if c, ok := counts[key]; !ok || c != b.count {
			t.Errorf("histogram %s: _count %v, +Inf bucket %v", key, c, b.count)
		}
	}
	for name := range done {
		if e.types[name] == "" {
			t.Errorf("family %s has no TYPE", name)
		}
	}
	if t.Failed() {
		t.Logf("exposition:\n%s", text)
	}
	return e
}

// validHelp reports whether HELP text uses only the \\ and \n escapes.
func validHelp(help string) bool {
	for i := 0; i < len(help); i++ {
		if help[i] != '\\' {
			continue
		}
		if i++; i == len(help) || (help[i] != '\\' && help[i] != 'n') {
			return false
		}
	}
	return true
}

// parseSeries splits `name{a="x",b="y"}` into the name and the label
// values, unescaped.
func parseSeries(s string) (string, map[string]string, error) {
	name, rest, hasLabels := strings.Cut(s, "{")
	if !metricNameRE.MatchString(name) {
		return "", nil, fmt.Errorf("bad metric name %q", name)
	}
	labels := map[string]string{}
	if !hasLabels {
		return name, labels, nil
	}
	rest, ok := strings.CutSuffix(rest, "}")
	if !ok || rest == "" {
		return "", nil, fmt.Errorf("bad label set")
	}
	for {
		ln, after, ok := strings.Cut(rest, `="`)
		if !ok || !labelNameRE.MatchString(ln) {
			return "", nil, fmt.Errorf("bad label name %q", ln)
		}
		if _, dup := labels[ln]; dup {
			return "", nil, fmt.Errorf("label %s twice", ln)
		}
		var val strings.Builder
		i := 0
		for ; i < len(after) && after[i] != '"'; i++ {
			c := after[i]
			if c == '\n' {
				return "", nil, fmt.Errorf("raw newline in label value")
			}
			if c != '\\' {
				val.WriteByte(c)
				continue
			}
			i++
			if i == len(after) {
				return "", nil, fmt.Errorf("label value ends in a backslash")
			}
			switch after[i] {
			case '\\':
				val.WriteByte('\\')
			case '"':
				val.WriteByte('"')
			case 'n':
				val.WriteByte('\n')
			default:
				return "", nil, fmt.Errorf("bad escape \\%c", after[i])
			}
		}
		if i == len(after) {
			return "", nil, fmt.Errorf("unterminated label value")
		}
		labels[ln] = val.String()
		rest = after[i+1:]
		if rest == "" {
			return name, labels, nil
		}
		if rest, ok = strings.CutPrefix(rest, ","); !ok {
			return "", nil, fmt.Errorf("junk after label %s", ln)
		}
	}
}

// seriesKey names a series by its family and labels, but skip.
func seriesKey(family string, labels map[string]string, skip string) string {
	var parts []string
	for k, v := range labels {
		if k != skip {
			parts = append(parts, k+"="+strconv.Quote(v))
		}
	}
	slices.Sort(parts)
	return family + "{" + strings.Join(parts, ",") + "}"
}

// recorder is a reporter that keeps the errors.
type recorder struct{ errs []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Failed() bool        { return len(r.errs) > 0 }

// TestCheckerRejects: checkExposition, which the other tests rely on,
// accepts a well-formed exposition and rejects each kind of malformed one.
func TestCheckerRejects(t *testing.T) {
	const good = "# HELP a_total A \\\\ help\\n text.\n# TYPE a_total counter\n" +
		`a_total{l="x\\y\"z\n"} 1` + "\n" + `a_total{l="w"} +Inf` + "\n" +
		"# HELP h A histogram.\n# TYPE h histogram\n" +
		`h_bucket{m="a",le="1"} 1` + "\n" + `h_bucket{m="a",le="+Inf"} 2` + "\n" + `h_sum{m="a"} 3` + "\n" + `h_count{m="a"} 2` + "\n" +
		"# HELP s A summary.\n# TYPE s summary\n" + `s{quantile="0.5"} 1` + "\ns_sum 1\ns_count 1\n"
	var r recorder
	if checkExposition(&r, good); r.Failed() {
		t.Fatalf("good exposition rejected: %q", r.errs)
	}
	for name, text := range map[string]string{
		"empty":               "",
		"no final newline":    strings.TrimSuffix(good, "\n"),
		"no TYPE":             "# HELP a A.\na 1\n",
		"no HELP":             "# TYPE a gauge\na 1\n",
		"TYPE before HELP":    "# TYPE a gauge\n# HELP a A.\na 1\n",
		"unknown type":        "# HELP a A.\n# TYPE a gaugez\na 1\n",
		"family twice":        "# HELP a A.\n# TYPE a gauge\na 1\n# HELP a A.\n# TYPE a gauge\n",
		"foreign sample":      "# HELP a A.\n# TYPE a gauge\nb 1\n",
		"duplicate series":    "# HELP a A.\n# TYPE a gauge\na{l=\"x\"} 1\na{l=\"x\"} 2\n",
		"bad value":           "# HELP a A.\n# TYPE a gauge\na 1x\n",
		"unsigned Inf":        "# HELP a A.\n# TYPE a gauge\na Inf\n",
		"timestamp":           "# HELP a A.\n# TYPE a gauge\na 1 1700000000000\n",
		"bad escape":          "# HELP a A.\n# TYPE a gauge\na{l=\"\\t\"} 1\n",
		"bad HELP escape":     "# HELP a A \\t.\n# TYPE a gauge\na 1\n",
		"unterminated value":  "# HELP a A.\n# TYPE a gauge\na{l=\"x} 1\n",
		"label twice":         "# HELP a A.\n# TYPE a gauge\na{l=\"x\",l=\"y\"} 1\n",
		"bad label name":      "# HELP a A.\n# TYPE a gauge\na{0l=\"x\"} 1\n",
		"blank line":          "# HELP a A.\n# TYPE a gauge\n\na 1\n",
		"other comment":       "# HELP a A.\n# TYPE a gauge\n# hi\na 1\n",
		"_sum on a gauge":     "# HELP a A.\n# TYPE a gauge\na_sum 1\n",
		"bare histogram":      "# HELP h H.\n# TYPE h histogram\nh 1\n",
		"summary no quantile": "# HELP s S.\n# TYPE s summary\ns 1\n",
		"not cumulative":      "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
		"le not rising":       "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
		"no +Inf":             "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n",
		"+Inf != count":       "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 2\n",
	} {
		var r recorder
		if checkExposition(&r, text); !r.Failed() {
			t.Errorf("%s: accepted %q", name, text)
		}
	}
}

// TestExpositionFormat: a full scrape passes the strict checker, carries
// every family dashboards expect with its type, sorted by name.
func TestExpositionFormat(t *testing.T) {
	m := metrics.New()
	m.SetSource(func() server.Stats { return server.Stats{Sessions: 1} })
	m.ObserveHandshake("sandmux.v2", time.Millisecond)
	e := scrape(t, m)

	want := map[string]string{
		"sandmux_sessions_active":            "gauge",
		"sandmux_raw_connections_active":     "gauge",
		"sandmux_sessions_total":             "counter",
		"sandmux_streams_active":             "gauge",
		"sandmux_streams_total":              "counter",
		"sandmux_bytes_total":                "counter",
		"sandmux_refusals_total":             "counter",
		"sandmux_resumptions_total":          "counter",
		"sandmux_receive_buffer_bytes":       "gauge",
		"sandmux_receive_buffer_limit_bytes": "gauge",
		"sandmux_resume_buffer_bytes":        "gauge",
		"sandmux_resume_buffer_limit_bytes":  "gauge",
		"sandmux_handshake_duration_seconds": "histogram",
		"go_goroutines":                      "gauge",
		"go_threads":                         "gauge",
		"go_info":                            "gauge",
		"go_gc_duration_seconds":             "summary",
		"go_memstats_alloc_bytes":            "gauge",
		"go_memstats_alloc_bytes_total":      "counter",
		"go_memstats_heap_inuse_bytes":       "gauge",
		"go_memstats_heap_objects":           "gauge",
		"go_memstats_sys_bytes":              "gauge",
		"go_memstats_last_gc_time_seconds":   "gauge",
	}
	if runtime.GOOS == "linux" {
		for _, n := range []string{"process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds"} {
			want[n] = "gauge"
		}
		want["process_cpu_seconds_total"] = "counter"
	}
	for name, typ := range want {
		if got := e.types[name]; got != typ {
			t.Errorf("family %s: type %q, want %q", name, got, typ)
		}
	}
	var names []string
	for _, line := range strings.Split(e.text, "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			names = append(names, strings.Fields(rest)[0])
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("families not sorted: %v", names)
	}
	if v := e.series[`go_info{version="`+runtime.Version()+`"}`]; v != 1 {
		t.Errorf("go_info = %v", v)
	}
	if !strings.Contains(e.text, "# HELP go_threads Number of OS threads created.\n") {
		t.Error("go_threads lacks client_golang's HELP text")
	}
}

// TestNoSourceYetFamilies: before SetSource, the only sandmux_ family is
// the handshake histogram, and that only once something was observed.
func TestNoSourceYetFamilies(t *testing.T) {
	m := metrics.New()
	for name := range scrape(t, m).types {
		if strings.HasPrefix(name, "sandmux_") {
			t.Errorf("family %s before any source or handshake", name)
		}
	}
	m.ObserveHandshake("raw", time.Millisecond)
	for name := range scrape(t, m).types {
		if strings.HasPrefix(name, "sandmux_") && name != "sandmux_handshake_duration_seconds" {
			t.Errorf("family %s before SetSource", name)
		}
	}
}

// TestHistogramBuckets: observations land in the first bucket whose
// bound they do not exceed (bounds are inclusive), the buckets are
// cumulative, and +Inf counts everything.
func TestHistogramBuckets(t *testing.T) {
	m := metrics.New()
	for _, d := range []time.Duration{
		0,                      // le=0.0005
		500 * time.Microsecond, // exactly 0.0005: still le=0.0005
		3 * time.Millisecond,   // le=0.005
		10 * time.Second,       // exactly 10: le=10
		time.Minute,            // only +Inf
	} {
		m.ObserveHandshake("raw", d)
	}
	e := scrape(t, m)
	want := map[string]float64{
		"0.0005": 2, "0.001": 2, "0.0025": 2, "0.005": 3, "0.01": 3, "0.025": 3, "0.05": 3,
		"0.1": 3, "0.25": 3, "0.5": 3, "1": 3, "2.5": 3, "5": 3, "10": 4, "+Inf": 5,
	}
	for le, n := range want {
		s := `sandmux_handshake_duration_seconds_bucket{mode="raw",le="` + le + `"}`
		if got, ok := e.series[s]; !ok || got != n {
			t.Errorf("%s = %v (present %v), want %v", s, got, ok, n)
		}
	}
	var buckets int
	for _, s := range e.samples {
		if s.name == "sandmux_handshake_duration_seconds_bucket" {
			buckets++
		}
	}
	if buckets != len(want) {
		t.Errorf("%d buckets, want %d", buckets, len(want))
	}
	if got := e.series[`sandmux_handshake_duration_seconds_count{mode="raw"}`]; got != 5 {
		t.Errorf("_count = %v, want 5", got)
	}
	if got := e.series[`sandmux_handshake_duration_seconds_sum{mode="raw"}`]; math.Abs(got-70.0035) > 1e-9 {
		t.Errorf("_sum = %v, want 70.0035", got)
	}
}

// TestLabelEscaping: a label value with a backslash, a double quote and
// a newline is written escaped, and reads back as it was.
func TestLabelEscaping(t *testing.T) {
	m := metrics.New()
	mode := "a\\b\"c\nd"
	m.ObserveHandshake(mode, time.Millisecond)
	e := scrape(t, m)
	if s := `sandmux_handshake_duration_seconds_count{mode="a\\b\"c\nd"} 1` + "\n"; !strings.Contains(e.text, s) {
		t.Errorf("exposition lacks %q:\n%s", s, e.text)
	}
	var found bool
	for _, s := range e.samples {
		if s.name == "sandmux_handshake_duration_seconds_count" {
			found = true
			if s.labels["mode"] != mode {
				t.Errorf("mode reads back as %q, want %q", s.labels["mode"], mode)
			}
		}
	}
	if !found {
		t.Error("no _count sample")
	}
}

// TestConcurrentObserve: observations from many goroutines, with scrapes
// racing them, all count, and every scrape sees each series whole (+Inf
// equal to _count, which checkExposition checks). Meant for -race.
func TestConcurrentObserve(t *testing.T) {
	m := metrics.New()
	const workers, each = 8, 500
	var wg sync.WaitGroup
	stop := make(chan struct{})
	scraped := make(chan struct{})
	go func() {
		defer close(scraped)
		for {
			select {
			case <-stop:
				return
			default:
				scrape(t, m)
			}
		}
	}()
	for w := range workers {
		wg.Go(func() {
			mode := []string{"raw", "sandmux.v2"}[w%2]
			for i := range each {
				m.ObserveHandshake(mode, time.Duration(i)*time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(stop)
	<-scraped

	e := scrape(t, m)
	for _, mode := range []string{"raw", "sandmux.v2"} {
		if got := e.series[`sandmux_handshake_duration_seconds_count{mode="`+mode+`"}`]; got != workers/2*each {
			t.Errorf("%s: _count %v, want %d", mode, got, workers/2*each)
		}
		// Each worker observed 0..each-1 ms.
		wantSum := float64(workers/2) * float64(each*(each-1)/2) / 1000
		if got := e.series[`sandmux_handshake_duration_seconds_sum{mode="`+mode+`"}`]; math.Abs(got-wantSum) > 1e-6 {
			t.Errorf("%s: _sum %v, want %v", mode, got, wantSum)
		}
	}
}

// TestGoRuntimeMetrics: the runtime metrics carry plausible values, and
// a garbage collection shows in the pause summary.
func TestGoRuntimeMetrics(t *testing.T) {
	runtime.GC()
	e := scrape(t, metrics.New())
	for _, name := range []string{
		"go_goroutines", "go_threads", "go_memstats_alloc_bytes", "go_memstats_heap_inuse_bytes",
		"go_memstats_sys_bytes", "go_memstats_heap_objects", "go_memstats_mallocs_total",
		"go_gc_duration_seconds_count", "go_memstats_last_gc_time_seconds", "go_sched_gomaxprocs_threads",
	} {
		if v := e.series[name]; !(v > 0) {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	if a, s := e.series["go_memstats_alloc_bytes"], e.series["go_memstats_sys_bytes"]; a > s {
		t.Errorf("alloc %v > sys %v", a, s)
	}
	for _, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
		if _, ok := e.series[`go_gc_duration_seconds{quantile="`+q+`"}`]; !ok {
			t.Errorf("go_gc_duration_seconds lacks quantile %s", q)
		}
	}
	if last := e.series["go_memstats_last_gc_time_seconds"]; math.Abs(last-float64(time.Now().Unix())) > 3600 {
		t.Errorf("last GC at %v, not within the hour", last)
	}
}

// TestProcessMetrics: on Linux the process_ metrics are there and
// plausible.
func TestProcessMetrics(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("process metrics come from /proc")
	}
	e := scrape(t, metrics.New())
	for _, name := range []string{
		"process_resident_memory_bytes", "process_virtual_memory_bytes",
		"process_open_fds", "process_max_fds", "process_start_time_seconds", "process_virtual_memory_max_bytes",
	} {
		if v := e.series[name]; !(v > 0) {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	if v, ok := e.series["process_cpu_seconds_total"]; !ok || v < 0 {
		t.Errorf("process_cpu_seconds_total = %v (present %v)", v, ok)
	}
	if r, v := e.series["process_resident_memory_bytes"], e.series["process_virtual_memory_bytes"]; r > v {
		t.Errorf("resident %v > virtual %v", r, v)
	}
	if start, now := e.series["process_start_time_seconds"], float64(time.Now().Unix()); start > now+1 || start < now-24*3600 {
		t.Errorf("start time %v, now %v", start, now)
	}
}

func BenchmarkObserveHandshake(b *testing.B) {
	m := metrics.New()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveHandshake("sandmux.v2", 3*time.Millisecond)
		}
	})
}

func BenchmarkScrape(b *testing.B) {
	m := metrics.New()
	m.SetSource(func() server.Stats { return server.Stats{} })
	m.ObserveHandshake("sandmux.v2", 3*time.Millisecond)
	h := m.Handler()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/metrics", nil))
	}
}
