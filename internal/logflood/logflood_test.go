package logflood

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestFloodIsCut(t *testing.T) {
	var buf bytes.Buffer
	log := New(slog.New(slog.NewTextHandler(&buf, nil)), time.Hour, 3)
	per := log.With("session", "a") // derived loggers share the counts
	for range 5 {
		per.Warn("refused stream: stream limit", Limit, "limit", 2)
	}
	log.Info("another line", Limit) // other messages are counted apart
	for range 5 {
		log.Info("session started") // unmarked lines all pass
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 9 {
		t.Fatalf("%d lines, want 3 of the flood, the other and 5 unmarked:\n%s", len(lines), buf.String())
	}
	if strings.Contains(buf.String(), "logflood") || !strings.Contains(lines[0], "session=a") || !strings.Contains(lines[0], "limit=2") {
		t.Errorf("the mark shows, or attributes are lost:\n%s", buf.String())
	}
	if !strings.Contains(lines[2], "more=") || strings.Contains(lines[1], "more=") {
		t.Errorf("the last line let through should say more are dropped:\n%s", buf.String())
	}
	if !strings.Contains(lines[3], "another line") {
		t.Errorf("another message was dropped:\n%s", buf.String())
	}
}

func TestCountRidesOnTheNextWindow(t *testing.T) {
	var buf bytes.Buffer
	log := New(slog.New(slog.NewTextHandler(&buf, nil)), time.Hour, 1)
	h := log.Handler().(*handler)
	now := time.Now()
	for i := range 4 {
		r := slog.NewRecord(now.Add(time.Duration(i)*time.Second), slog.LevelWarn, "bad request", 0)
		r.AddAttrs(Limit)
		_ = h.Handle(t.Context(), r)
	}
	r := slog.NewRecord(now.Add(2*time.Hour), slog.LevelWarn, "bad request", 0)
	r.AddAttrs(Limit)
	_ = h.Handle(t.Context(), r)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "dropped_before=3") {
		t.Fatalf("want the first line, then one a window later counting the 3 dropped:\n%s", buf.String())
	}
}
