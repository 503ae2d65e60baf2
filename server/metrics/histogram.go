package metrics

import (
	"slices"
	"strings"
	"sync"
)

// histogram is a Prometheus histogram with one label: fixed bucket upper
// bounds, one series per label value, created at its first observation.
//
// One mutex guards it all. Observations come once per handshake, far too
// rarely for contention to matter, and the lock makes a scrape see each
// series whole: with per-field atomics a scrape racing an observation
// could show a _count that disagrees with the +Inf bucket.
type histogram struct {
	bounds []float64 // upper bounds, ascending, without +Inf
	les    []string  // their le label values, then "+Inf"

	mu     sync.Mutex
	series map[string]*histSeries
}

// histSeries is one label value's observations. counts[i] is the number
// of observations in bucket i alone (bounds[i-1] < v <= bounds[i]), the
// last one being (bounds[len-1], +Inf); the exposition adds them up into
// the cumulative counts the format wants.
type histSeries struct {
	counts []uint64
	sum    float64
}

// newHistogram returns a histogram with the given upper bounds, which
// must ascend; +Inf is implied.
func newHistogram(bounds []float64) *histogram {
	les := make([]string, 0, len(bounds)+1)
	for _, b := range bounds {
		les = append(les, string(appendFloat(nil, b)))
	}
	return &histogram{bounds: bounds, les: append(les, "+Inf"), series: map[string]*histSeries{}}
}

// observe records v under label value lv.
func (h *histogram) observe(lv string, v float64) {
	// Buckets are "less than or equal": v lands in the first bound >= v,
	// or past them all, in +Inf. NaN compares false and lands in +Inf,
	// as in client_golang.
	i := 0
	for i < len(h.bounds) && !(v <= h.bounds[i]) {
		i++
	}
	h.mu.Lock()
	s := h.series[lv]
	if s == nil {
		s = &histSeries{counts: make([]uint64, len(h.bounds)+1)}
		h.series[lv] = s
	}
	s.counts[i]++
	s.sum += v
	h.mu.Unlock()
}

// write adds every series to f, sorted by label value: the cumulative
// _bucket lines (le="+Inf" last, equal to _count), _sum and _count. It
// copies the series under the lock and formats them outside it, so that
// a scrape holds up observations only for the copying.
func (h *histogram) write(f *family, label string) {
	type snap struct {
		lv     string
		counts []uint64
		sum    float64
	}
	h.mu.Lock()
	snaps := make([]snap, 0, len(h.series))
	for lv, s := range h.series {
		snaps = append(snaps, snap{lv, slices.Clone(s.counts), s.sum})
	}
	h.mu.Unlock()
	slices.SortFunc(snaps, func(a, b snap) int { return strings.Compare(a.lv, b.lv) })

	for _, s := range snaps {
		var cum uint64
		for i, c := range s.counts {
			cum += c
			f.add("_bucket", float64(cum), label, s.lv, "le", h.les[i])
		}
		f.add("_sum", s.sum, label, s.lv)
		f.add("_count", float64(cum), label, s.lv)
	}
}
