// Package logflood keeps a flood of one log line from flooding the log:
// lines a peer can trigger at will (a refused upgrade, a bad request)
// carry Limit (or LimitTo), and pass at most a burst of times per
// message per window. The rest are counted, and once the window is over
// one line, "log lines suppressed", says how many of that kind were
// dropped and over how long, so nothing is lost without a word. Other
// lines pass as they are.
package logflood

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Default window and burst: ten lines of a kind a minute tell an
// operator what happens; the summary after the minute says how many
// more there were.
const (
	DefaultWindow = time.Minute
	DefaultBurst  = 10
)

// SuppressedMsg is the message of the line that counts the lines of one
// kind dropped in a window.
const SuppressedMsg = "log lines suppressed"

// Limit marks a record as one a peer can repeat at will, DefaultBurst
// of which pass per window. It is not written out.
var Limit = slog.Bool(limitKey, true)

// LimitTo marks a record as Limit does, with burst records of its
// kind passing per window instead of DefaultBurst: for lines that
// ordinary use writes often but a stranger could write without end.
func LimitTo(burst int) slog.Attr { return slog.Int(limitKey, burst) }

const limitKey = "logflood.limit"

// Limiter is a logger whose records marked Limit are limited. Its
// Logger, and every logger derived from it (With), share the counts, so
// a flood spread over many sessions is still one flood.
type Limiter struct {
	log *slog.Logger
	st  *state
}

// Wrap returns a Limiter around log with DefaultBurst records per
// message per DefaultWindow.
func Wrap(log *slog.Logger) *Limiter { return New(log, DefaultWindow, DefaultBurst) }

// New returns a Limiter that writes through log's handler, letting at
// most burst records marked Limit with the same level and message
// through per window.
func New(log *slog.Logger, window time.Duration, burst int) *Limiter {
	st := &state{next: log.Handler(), window: window, burst: burst, now: time.Now, keys: map[key]*count{}}
	return &Limiter{log: slog.New(&handler{next: st.next, st: st}), st: st}
}

// Logger is the limited logger.
func (l *Limiter) Logger() *slog.Logger { return l.log }

// Close writes the summary of every kind with lines dropped so far,
// without waiting for its window to end, and waits for a summary being
// written. From then on nothing is limited: no summary would follow.
func (l *Limiter) Close() {
	l.st.mu.Lock()
	l.st.closed = true
	if l.st.timer != nil {
		l.st.timer.Stop()
	}
	due := l.st.takeDue(l.st.now(), true)
	l.st.mu.Unlock()
	l.st.writing.Wait()
	l.st.write(due)
}

type key struct {
	level slog.Level
	msg   string
}

type count struct {
	start      time.Time // of the current window
	passed     int       // records let through in it
	suppressed int       // records dropped in it
	first      time.Time // the first of them dropped
	last       time.Time // the last of them dropped
}

type state struct {
	next   slog.Handler // the wrapped logger's: summaries carry none of a derived logger's attributes
	window time.Duration
	burst  int
	now    func() time.Time // a fake clock in tests

	mu      sync.Mutex
	keys    map[key]*count // bounded: messages are constants
	timer   *time.Timer    // armed while some kind has lines dropped
	timerAt time.Time      // when it fires, on s.now's clock
	closed  bool
	writing sync.WaitGroup // the timer's summaries being written
}

// summary is one "log lines suppressed" line to write.
type summary struct {
	key   key
	count int
	over  time.Duration
	at    time.Time
}

// admit decides on one record: whether it passes, whether it is the
// last to pass in its window, and the summary of the window before,
// if lines were dropped in it and not yet counted out loud.
func (s *state) admit(k key, burst int, now time.Time) (pass, last bool, before []summary) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return true, false, nil
	}
	c := s.keys[k]
	if c == nil {
		c = &count{start: now}
		s.keys[k] = c
	}
	if now.Sub(c.start) >= s.window {
		// Said before this record, which would otherwise come first if
		// the timer has not yet fired.
		before = s.take(k, c, now)
		c.start, c.passed = now, 0
	}
	if c.passed >= burst {
		if c.suppressed == 0 {
			c.first = now
		}
		c.suppressed++
		c.last = now
		s.arm(now, c.start.Add(s.window))
		return false, false, before
	}
	c.passed++
	return true, c.passed == burst, before
}

// take empties c's count of dropped lines into a summary, if it has any.
func (s *state) take(k key, c *count, now time.Time) []summary {
	if c.suppressed == 0 {
		return nil
	}
	sum := summary{key: k, count: c.suppressed, over: c.last.Sub(c.first), at: now}
	c.suppressed = 0
	return []summary{sum}
}

// takeDue takes the summaries of the kinds whose window has ended by
// now, or of every kind with lines dropped if all is set.
func (s *state) takeDue(now time.Time, all bool) []summary {
	var due []summary
	for k, c := range s.keys {
		if all || now.Sub(c.start) >= s.window {
			due = append(due, s.take(k, c, now)...)
		}
	}
	return due
}

// arm makes sure the timer fires by end, when the window of a kind with
// lines dropped ends: the summary must not wait for the next line of
// that kind, which a flood that stopped never sends.
func (s *state) arm(now, end time.Time) {
	if s.timer != nil && !end.Before(s.timerAt) {
		return
	}
	if s.timer != nil && !s.timer.Stop() {
		return // firing: fire rearms it for the windows not yet ended
	}
	s.timer, s.timerAt = time.AfterFunc(end.Sub(now), s.fire), end
}

// fire writes the summaries of the windows that have ended, and rearms
// the timer for the kinds whose window has not.
func (s *state) fire() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.timer != nil {
		s.timer.Stop() // when a test calls fire itself
	}
	s.timer = nil
	now := s.now()
	due := s.takeDue(now, false)
	for _, c := range s.keys {
		if c.suppressed > 0 {
			s.arm(now, c.start.Add(s.window))
		}
	}
	s.writing.Add(1) // under mu, before Close can set closed and Wait
	s.mu.Unlock()
	defer s.writing.Done()
	s.write(due)
}

func (s *state) write(due []summary) {
	for _, sum := range due {
		r := slog.NewRecord(sum.at, sum.key.level, SuppressedMsg, 0)
		r.AddAttrs(slog.String("kind", sum.key.msg), slog.Int("count", sum.count),
			slog.Duration("over", sum.over.Round(time.Millisecond)))
		_ = s.next.Handle(context.Background(), r)
	}
}

type handler struct {
	next slog.Handler
	st   *state
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	burst := 0
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != limitKey {
			return true
		}
		burst = h.st.burst
		if a.Value.Kind() == slog.KindInt64 {
			burst = int(a.Value.Int64())
		}
		return false
	})
	if burst == 0 {
		return h.next.Handle(ctx, r)
	}
	pass, last, before := h.st.admit(key{r.Level, r.Message}, burst, h.st.now())
	h.st.write(before)
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
	if last {
		out.AddAttrs(slog.String("more", "lines like this are counted, not logged, for the rest of "+h.st.window.String()+
			`; a "`+SuppressedMsg+`" line then says how many`))
	}
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{next: h.next.WithAttrs(as), st: h.st}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), st: h.st}
}
