// Package logflood keeps a flood of one log line from flooding the log:
// lines a peer can trigger at will (a refused stream, a bad request)
// carry Limit, and pass at most Burst times per message per window; the
// rest are counted, and the count rides on the message's next line let
// through. Other lines pass as they are.
package logflood

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Default window and burst: ten lines of a kind a minute tell an
// operator what happens; the eleventh says how many more were dropped.
const (
	DefaultWindow = time.Minute
	DefaultBurst  = 10
)

// Limit marks a record as one a peer can repeat at will. It is not
// written out.
var Limit = slog.Bool(limitKey, true)

const limitKey = "logflood.limit"

// Wrap returns log with DefaultBurst records per message per
// DefaultWindow for records marked Limit.
func Wrap(log *slog.Logger) *slog.Logger { return New(log, DefaultWindow, DefaultBurst) }

// New returns a logger that writes through log's handler, letting at
// most burst records marked Limit with the same level and message
// through per window. Loggers derived from it (With) share its counts,
// so a flood spread over many sessions is still one flood.
func New(log *slog.Logger, window time.Duration, burst int) *slog.Logger {
	return slog.New(&handler{next: log.Handler(), st: &state{window: window, burst: burst, keys: map[key]*count{}}})
}

type key struct {
	level slog.Level
	msg   string
}

type count struct {
	start      time.Time // of the current window
	passed     int       // records let through in it
	suppressed int       // records dropped since the last one let through
}

type state struct {
	window time.Duration
	burst  int
	mu     sync.Mutex
	keys   map[key]*count // bounded: messages are constants
}

// admit decides on one record: whether it passes, how many before it
// were dropped, and whether it is the last to pass in this window.
func (s *state) admit(k key, now time.Time) (pass bool, dropped int, last bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.keys[k]
	if c == nil {
		c = &count{start: now}
		s.keys[k] = c
	}
	if now.Sub(c.start) >= s.window {
		c.start, c.passed = now, 0
	}
	if c.passed >= s.burst {
		c.suppressed++
		return false, 0, false
	}
	c.passed++
	dropped, c.suppressed = c.suppressed, 0
	return true, dropped, c.passed == s.burst
}

type handler struct {
	next slog.Handler
	st   *state
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	limited := false
	r.Attrs(func(a slog.Attr) bool {
		limited = a.Key == limitKey
		return !limited
	})
	if !limited {
		return h.next.Handle(ctx, r)
	}
	pass, dropped, last := h.st.admit(key{r.Level, r.Message}, r.Time)
	if !pass {
		return nil
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != limitKey {
			out.AddAttrs(a)
		}
		return true
	})
	r = out
	if dropped > 0 {
		r.AddAttrs(slog.Int("dropped_before", dropped))
	}
	if last {
		r.AddAttrs(slog.String("more", "lines like this are dropped for the rest of "+h.st.window.String()+", and counted"))
	}
	return h.next.Handle(ctx, r)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{next: h.next.WithAttrs(as), st: h.st}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), st: h.st}
}
