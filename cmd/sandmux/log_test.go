package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// net/http's own complaints (an accept failing on a full file table,
// retried every few milliseconds) reach the server's log as its other
// lines do, with a level, and a flood of them is cut; they went to
// stderr through the standard logger, in another format, unlimited.
func TestHTTPErrorLog(t *testing.T) {
	var buf bytes.Buffer
	l := httpErrorLog(slog.New(slog.NewTextHandler(&buf, nil)))
	for range 50 {
		l.Print("http: Accept error: accept tcp 127.0.0.1:8081: accept4: too many open files; retrying in 5ms")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := `level=WARN msg="http server error" err="Accept error: accept tcp 127.0.0.1:8081: accept4: too many open files; retrying in 5ms"`
	if !strings.Contains(lines[0], want) {
		t.Errorf("first line %q, want it to hold %q", lines[0], want)
	}
	if len(lines) > 10 {
		t.Errorf("%d lines for 50 complaints, want at most 10 a minute:\n%s", len(lines), buf.String())
	}
}
