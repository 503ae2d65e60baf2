package logflood

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is the limiter's clock in these tests: they move it, and
// call fire where the timer would.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTest returns a limiter on a fake clock writing into buf. Its
// window is an hour, so the real timer never fires during a test.
func newTest(t *testing.T, buf *bytes.Buffer, burst int) (*Limiter, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := New(slog.New(slog.NewTextHandler(buf, nil)), time.Hour, burst)
	l.st.now = clock.now
	t.Cleanup(l.Close)
	return l, clock
}

func lines(buf *bytes.Buffer) []string {
	return strings.Split(strings.TrimSpace(buf.String()), "\n")
}

func TestFloodIsCut(t *testing.T) {
	var buf bytes.Buffer
	l, _ := newTest(t, &buf, 3)
	log := l.Logger()
	per := log.With("session", "a") // derived loggers share the counts
	for range 5 {
		per.Warn("refused stream: stream limit", Limit, "limit", 2)
	}
	log.Info("another line", Limit) // other messages are counted apart
	for range 5 {
		log.Info("session started") // unmarked lines all pass
	}
	got := lines(&buf)
	if len(got) != 9 {
		t.Fatalf("%d lines, want 3 of the flood, the other and 5 unmarked:\n%s", len(got), buf.String())
	}
	if strings.Contains(buf.String(), "logflood") || !strings.Contains(got[0], "session=a") || !strings.Contains(got[0], "limit=2") {
		t.Errorf("the mark shows, or attributes are lost:\n%s", buf.String())
	}
	if !strings.Contains(got[2], "more=") || strings.Contains(got[1], "more=") {
		t.Errorf("the last line let through should say more are dropped:\n%s", buf.String())
	}
	if !strings.Contains(got[3], "another line") {
		t.Errorf("another message was dropped:\n%s", buf.String())
	}
}

// Once the window is over, one line counts the lines dropped in it,
// at the level of the kind, without the attributes of the logger that
// wrote them; a flood that stopped gets it too (the timer).
func TestSummaryAfterTheWindow(t *testing.T) {
	var buf bytes.Buffer
	l, clock := newTest(t, &buf, 2)
	log := l.Logger().With("remote", "192.0.2.1:4444")
	for range 2000 {
		log.Info("refused upgrade: missing or wrong token", Limit)
		clock.add(time.Millisecond)
	}
	l.st.fire() // before the window's end: nothing yet
	if got := lines(&buf); len(got) != 2 {
		t.Fatalf("%d lines before the window's end, want the 2 let through:\n%s", len(got), buf.String())
	}
	clock.add(time.Hour)
	l.st.fire()
	l.st.fire() // said once
	got := lines(&buf)
	want := `level=INFO msg="log lines suppressed" kind="refused upgrade: missing or wrong token" count=1998 over=1.997s`
	if len(got) != 3 || !strings.HasSuffix(got[2], want) {
		t.Fatalf("want 2 lines then\n  %s\ngot:\n%s", want, buf.String())
	}
}

// The next line of a kind after its window says first how many were
// dropped, if the timer has not yet.
func TestSummaryBeforeTheNextLine(t *testing.T) {
	var buf bytes.Buffer
	l, clock := newTest(t, &buf, 1)
	for range 4 {
		l.Logger().Warn("bad request", Limit)
		clock.add(time.Second)
	}
	clock.add(time.Hour)
	l.Logger().Warn("bad request", Limit)
	got := lines(&buf)
	if len(got) != 3 || !strings.Contains(got[1], `level=WARN msg="log lines suppressed" kind="bad request" count=3 over=2s`) ||
		!strings.Contains(got[2], `msg="bad request"`) {
		t.Fatalf("want the first line, the count of the 3 dropped, then the next:\n%s", buf.String())
	}
	l.st.fire()
	if n := len(lines(&buf)); n != 3 {
		t.Fatalf("the count was said twice:\n%s", buf.String())
	}
}

// Close says what is pending at once, and from then on nothing is cut:
// no count would follow.
func TestCloseSaysWhatIsPending(t *testing.T) {
	var buf bytes.Buffer
	l, _ := newTest(t, &buf, 1)
	for range 3 {
		l.Logger().Info("bad request", Limit)
	}
	l.Close()
	if !strings.Contains(buf.String(), `msg="log lines suppressed" kind="bad request" count=2`) {
		t.Fatalf("Close did not say how many were dropped:\n%s", buf.String())
	}
	for range 3 {
		l.Logger().Info("bad request", Limit)
	}
	if n := len(lines(&buf)); n != 5 {
		t.Fatalf("%d lines, want 2 then the 3 after Close:\n%s", n, buf.String())
	}
}

// LimitTo sets a kind's burst: a generous one for lines ordinary use
// writes often.
func TestLimitTo(t *testing.T) {
	var buf bytes.Buffer
	l, _ := newTest(t, &buf, 1)
	for range 10 {
		l.Logger().Info("session started", LimitTo(5))
	}
	l.Close()
	got := lines(&buf)
	if len(got) != 6 || !strings.Contains(got[5], `kind="session started" count=5`) {
		t.Fatalf("want 5 lines and the count of 5 more:\n%s", buf.String())
	}
}

// signalHandler tells of every record it gets.
type signalHandler struct {
	slog.Handler
	got chan slog.Record
}

func (signalHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	h.got <- r
	return nil
}

// The timer, on the real clock, says the count without another line.
func TestTimerSaysTheCount(t *testing.T) {
	got := make(chan slog.Record, 10)
	l := New(slog.New(signalHandler{slog.DiscardHandler, got}), 10*time.Millisecond, 1)
	defer l.Close()
	for range 3 {
		l.Logger().Info("bad request", Limit)
	}
	<-got // the one let through
	select {
	case r := <-got:
		if r.Message != SuppressedMsg {
			t.Fatalf("got %q, want the count", r.Message)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no count 10 s after a window of 10 ms")
	}
}
