//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Report is one run of the bench: what `make bench` prints as a markdown
// table and writes as JSON.
type Report struct {
	Mode     string    `json:"mode"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Host     HostInfo  `json:"host"`
	Settings Settings  `json:"settings"`
	Rows     []*Row    `json:"rows"`
	Notes    []string  `json:"notes"`
}

// HostInfo says where the figures came from.
type HostInfo struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	Kernel    string `json:"kernel,omitempty"`
	GoVersion string `json:"go_version"`
	OpenSSH   string `json:"openssh,omitempty"`
	Commit    string `json:"commit,omitempty"`
	// LoadStart and LoadEnd are the 1-minute load averages around the run.
	LoadStart float64 `json:"load_start"`
	LoadEnd   float64 `json:"load_end"`
}

// Ratio is a row's figure divided by another peer's in the same case.
type Ratio struct {
	To    string  `json:"to"`
	Value float64 `json:"value"`
}

// Row is one scenario × case × peer measurement.
type Row struct {
	Scenario int    `json:"scenario"`
	Name     string `json:"name"`
	Case     string `json:"case"`
	Peer     string `json:"peer"`
	// Figure is the rendered measurement; Value its headline number in
	// Unit (the median over repetitions), Samples every repetition's.
	Figure  string             `json:"figure"`
	Value   *float64           `json:"value,omitempty"`
	Unit    string             `json:"unit,omitempty"`
	Samples []float64          `json:"samples,omitempty"`
	Extra   map[string]float64 `json:"extra,omitempty"`
	Ratios  []Ratio            `json:"ratios,omitempty"`
	// Target is the goal for this row; Met is nil when there is
	// none or the row has no figure.
	Target  string `json:"target,omitempty"`
	Met     *bool  `json:"met,omitempty"`
	Error   string `json:"error,omitempty"`
	Skipped bool   `json:"skipped,omitempty"`
}

// value is the headline number, NaN without one.
func (r *Row) value() float64 {
	if r == nil || r.Value == nil {
		return math.NaN()
	}
	return *r.Value
}

func (r *Row) setValue(v float64, unit string) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	r.Value = &v
	r.Unit = unit
}

func (r *Row) fail(err error) {
	if errors.Is(err, errSkipped) {
		r.Skipped = true
	}
	r.Error = oneLine(err.Error())
}

// ratioTo records r's value over base's under base's peer name.
func (r *Row) ratioTo(base *Row) float64 {
	v, b := r.value(), base.value()
	if math.IsNaN(v) || math.IsNaN(b) || b == 0 {
		return math.NaN()
	}
	x := v / b
	r.Ratios = append(r.Ratios, Ratio{To: base.Peer, Value: x})
	return x
}

// judge sets the target text and, when every ratio or value involved was
// measured, whether it is met.
func (r *Row) judge(target string, ok bool, inputs ...float64) {
	r.Target = target
	if r.Error != "" {
		return
	}
	for _, x := range inputs {
		if math.IsNaN(x) {
			return
		}
	}
	r.Met = &ok
}

func (r *Row) extra(k string, v float64) {
	if math.IsNaN(v) {
		return
	}
	if r.Extra == nil {
		r.Extra = map[string]float64{}
	}
	r.Extra[k] = v
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// Markdown renders the report.
func (rep *Report) Markdown(w io.Writer) {
	fmt.Fprintf(w, "## sandmux bench (%s mode, %s)\n\n", rep.Mode, rep.Started.Format("2006-01-02 15:04 MST"))
	h := rep.Host
	fmt.Fprintf(w, "%d CPUs %s · %s · %s", h.CPUs, h.CPUModel, h.Kernel, h.GoVersion)
	if h.OpenSSH != "" {
		fmt.Fprintf(w, " · %s", h.OpenSSH)
	}
	if h.Commit != "" {
		fmt.Fprintf(w, " · commit %s", h.Commit)
	}
	fmt.Fprintf(w, " · load %.1f→%.1f · %.0f s\n\n", h.LoadStart, h.LoadEnd, rep.Seconds)
	fmt.Fprintln(w, "| # | scenario | case | peer | figure | ratio | target | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range rep.Rows {
		fig := r.Figure
		if r.Error != "" {
			if r.Skipped {
				fig = r.Error
			} else {
				fig = "ERROR: " + r.Error
			}
		}
		var ratios []string
		for _, x := range r.Ratios {
			ratios = append(ratios, fmt.Sprintf("%.2f× %s", x.Value, x.To))
		}
		met := ""
		switch {
		case r.Met == nil && r.Target != "":
			met = "–"
		case r.Met != nil && *r.Met:
			met = "met"
		case r.Met != nil:
			met = "**NOT MET**"
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s |\n", r.Scenario, r.Name, r.Case, r.Peer,
			mdEscape(fig), strings.Join(ratios, "; "), mdEscape(r.Target), met)
	}
	if len(rep.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range rep.Notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

// WriteJSON writes the report to path, creating its directory.
func (rep *Report) WriteJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
