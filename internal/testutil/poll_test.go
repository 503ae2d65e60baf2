package testutil

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	calls := 0
	if !Poll(10*time.Second, func() bool { calls++; return calls == 3 }) {
		t.Fatal("Poll gave up on a condition that came true")
	}
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3: Poll goes on after it holds", calls)
	}
	calls = 0
	start := time.Now()
	if Poll(50*time.Millisecond, func() bool { calls++; return false }) {
		t.Fatal("Poll reported a condition that never held")
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Fatalf("Poll gave up after %v, before its 50ms timeout", took)
	}
	if calls < 2 {
		t.Fatalf("cond called %d times in 50ms, want it polled", calls)
	}
}

// fatalTB records a Fatalf and ends its goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWaitFor(t *testing.T) {
	WaitFor(t, 10*time.Second, "a true condition", func() bool { return true })

	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		WaitFor(f, 20*time.Millisecond, "the impossible", func() bool { return false })
	}()
	<-done
	if want := "timed out after 20ms waiting for the impossible"; !strings.Contains(f.msg, want) {
		t.Fatalf("failure %q, want %q", f.msg, want)
	}
}
