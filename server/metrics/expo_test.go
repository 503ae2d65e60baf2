package metrics

import (
	"math"
	"testing"
)

// TestRender: HELP text and label values are escaped as the format
// wants, floats are written as client_golang writes them, and empty
// families are left out.
func TestRender(t *testing.T) {
	var e exposition
	e.family("b_total", "B.", typeCounter).add("", math.Inf(1))
	e.family("empty", "Nothing.", typeGauge)
	f := e.family("a", "Back\\slash, \"quote\" and\nnewline.", typeGauge)
	f.add("", 1.5e+06, "l", "back\\slash \"quote\"\nnewline")
	f.add("", 0.1, "l", "x", "m", "y")
	got := string(e.render())
	want := `# HELP a Back\\slash, "quote" and\nnewline.
# TYPE a gauge
a{l="back\\slash \"quote\"\nnewline"} 1.5e+06
a{l="x",m="y"} 0.1
# HELP b_total B.
# TYPE b_total counter
b_total +Inf
`
	if got != want {
		t.Errorf("render:\n%s\nwant:\n%s", got, want)
	}
}
