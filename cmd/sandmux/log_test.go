package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/sandmux/sandmux/internal/logflood"
)

// net/http's own complaints (an accept failing on a full file table,
// retried every few milliseconds) reach the server's log as its other
// lines do, with a level, and a flood of them is cut; they went to
// stderr through the standard logger, in another format, unlimited.
func TestHTTPErrorLog(t *testing.T) {
	var buf bytes.Buffer
	limit := logflood.Wrap(slog.New(slog.NewTextHandler(&buf, nil)))
	l := httpErrorLog(limit.Logger())
	for range 50 {
		l.Print("http: Accept error: accept tcp 127.0.0.1:8081: accept4: too many open files; retrying in 5ms")
	}
	limit.Close()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := `level=WARN msg="http server error" err="Accept error: accept tcp 127.0.0.1:8081: accept4: too many open files; retrying in 5ms"`
	if !strings.Contains(lines[0], want) {
		t.Errorf("first line %q, want it to hold %q", lines[0], want)
	}
	if len(lines) != 11 || !strings.Contains(lines[10], `msg="log lines suppressed" kind="http server error" count=40`) {
		t.Errorf("%d lines for 50 complaints, want 10 and the count of the other 40:\n%s", len(lines), buf.String())
	}
}
