package testutil

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/logflood"
)

// WantFloodCounted checks the log of n lines of kind (message) marked
// logflood.Limit, written over elapsed and then the Limiter closed: a
// burst of them written per window, and the rest counted in "log lines
// suppressed" lines, at least one and at most one per window.
func WantFloodCounted(t testing.TB, logs, kind string, n int, elapsed time.Duration) {
	t.Helper()
	logged := CountLines(logs, `msg="`+kind+`"`)
	count, summaries := 0, 0
	re := regexp.MustCompile(`msg="` + logflood.SuppressedMsg + `" kind="` + regexp.QuoteMeta(kind) + `" count=(\d+) over=`)
	for _, m := range re.FindAllStringSubmatch(logs, -1) {
		c, _ := strconv.Atoi(m[1])
		count += c
		summaries++
	}
	// One window, unless the machine is slow enough for the flood to
	// outlast a minute.
	windows := 1 + int(elapsed/logflood.DefaultWindow)
	if logged < logflood.DefaultBurst || logged > windows*logflood.DefaultBurst || summaries < 1 || summaries > windows {
		t.Errorf("%d lines and %d counts for %d of %q in %s, want %d lines and 1 count a minute",
			logged, summaries, n, kind, elapsed, logflood.DefaultBurst)
	}
	if logged+count != n {
		t.Errorf("%d lines logged and %d counted as dropped, want %d in all", logged, count, n)
	}
}
