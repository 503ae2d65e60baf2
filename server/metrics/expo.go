package metrics

import (
	"slices"
	"strconv"
	"strings"
)

// contentType is that of the Prometheus text exposition format 0.0.4,
// the one format every Prometheus and every other scraper still accepts;
// writing only it spares the binary the content negotiation (and the
// protobuf) of the client library.
const contentType = "text/plain; version=0.0.4; charset=utf-8"

// The metric types the text format names in its # TYPE lines.
const (
	typeCounter   = "counter"
	typeGauge     = "gauge"
	typeHistogram = "histogram"
	typeSummary   = "summary"
)

// exposition collects one scrape's metric families, each with its
// samples already formatted, so that they can be written sorted by name
// the way client_golang wrote them (scrapers do not need the order, but
// diffs of two scrapes and people reading them do).
type exposition struct {
	families []*family
}

// family is one metric family: its # HELP and # TYPE lines and the sample
// lines under them.
type family struct {
	name, help, typ string
	body            []byte
}

// family starts a metric family. A family that gets no samples is left
// out of the output altogether, as client_golang leaves out a vector with
// no children: a # TYPE with nothing under it tells a dashboard nothing.
func (e *exposition) family(name, help, typ string) *family {
	f := &family{name: name, help: help, typ: typ}
	e.families = append(e.families, f)
	return f
}

// add writes one sample of f named f.name plus suffix ("" for plain
// gauges and counters, or "_bucket", "_sum", "_count"), with labels given
// as name, value pairs. Label names are this package's constants, so only
// the values need escaping.
func (f *family) add(suffix string, v float64, labels ...string) {
	b := append(f.body, f.name...)
	b = append(b, suffix...)
	if len(labels) > 0 {
		b = append(b, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, labels[i]...)
			b = append(b, '=', '"')
			b = appendEscaped(b, labels[i+1], true)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = appendFloat(b, v)
	f.body = append(b, '\n')
}

// render returns the families that have samples, sorted by name, each
// with its # HELP and # TYPE once before its samples.
func (e *exposition) render() []byte {
	slices.SortStableFunc(e.families, func(a, b *family) int { return strings.Compare(a.name, b.name) })
	var out []byte
	for _, f := range e.families {
		if len(f.body) == 0 {
			continue
		}
		out = append(out, "# HELP "...)
		out = append(out, f.name...)
		out = append(out, ' ')
		out = appendEscaped(out, f.help, false)
		out = append(out, "\n# TYPE "...)
		out = append(out, f.name...)
		out = append(out, ' ')
		out = append(out, f.typ...)
		out = append(out, '\n')
		out = append(out, f.body...)
	}
	return out
}

// appendEscaped appends s escaped as the text format wants: backslash and
// newline in HELP text, and the double quote too in label values (where
// it would otherwise end the value).
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat formats v as client_golang does: the shortest 'g' form that
// reads back exactly. FormatFloat already spells the infinities and NaN
// as the format does ("+Inf", "-Inf", "NaN").
func appendFloat(b []byte, v float64) []byte {
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}
