package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/sandmux/sandmux/agent"
)

// reconnectQuiet is how long a proxy waits silently for a (re)connecting
// session before it says so: most reconnects are over well before.
const reconnectQuiet = 2 * time.Second

// reconnectTick paces the countdown in the line.
const reconnectTick = 100 * time.Millisecond

// reconnectLine is the one updating line a proxy prints on its terminal
// while it waits for the agent to reconnect:
//
//	sandmux: reconnecting to abc (attempt 3, next in 1.6s)
//
// It is cleared when the wait ends. It is only ever drawn on a terminal:
// under ssh, the proxy's stderr is the user's terminal, and a log file or
// pipe must not collect carriage returns.
type reconnectLine struct {
	w     io.Writer
	host  string
	start time.Time
	quiet time.Duration

	mu     sync.Mutex
	last   *agent.Progress
	lastAt time.Time
	shown  bool

	stop chan struct{}
	done chan struct{}
}

// newReconnectLine starts the line for host on w, or returns nil when w
// is not a terminal.
func newReconnectLine(w io.Writer, host string) *reconnectLine {
	f, ok := w.(*os.File)
	if rw, isRaw := w.(rawTermWriter); isRaw {
		f, ok = rw.f, true
	}
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return startReconnectLine(w, host, reconnectQuiet)
}

// startReconnectLine draws on w whatever the terminal check; tests use it
// directly.
func startReconnectLine(w io.Writer, host string, quiet time.Duration) *reconnectLine {
	r := &reconnectLine{w: w, host: host, start: time.Now(), quiet: quiet, stop: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r
}

// update records the agent's latest report; it never blocks on the
// terminal.
func (r *reconnectLine) update(p agent.Progress) {
	r.mu.Lock()
	r.last, r.lastAt = &p, time.Now()
	r.mu.Unlock()
}

func (r *reconnectLine) run() {
	defer close(r.done)
	tick := time.NewTicker(reconnectTick)
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-tick.C:
		}
		r.draw()
	}
}

func (r *reconnectLine) draw() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil || time.Since(r.start) < r.quiet {
		return
	}
	text := progressText(r.host, *r.last, time.Since(r.lastAt), time.Since(r.start))
	fmt.Fprintf(r.w, "\r%s\033[K", text)
	r.shown = true
}

// finish stops the line and clears it if it was drawn.
func (r *reconnectLine) finish() {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.shown {
		fmt.Fprint(r.w, "\r\033[K")
	}
}

// progressText words one report; age is how long ago it arrived, waited
// how long the proxy has been waiting.
func progressText(host string, p agent.Progress, age, waited time.Duration) string {
	switch p.State {
	case agent.StateResuming:
		return fmt.Sprintf("sandmux: resuming the session to %s (waiting %s)", host, waited.Round(time.Second))
	case agent.StateConnecting, agent.StateReconnecting:
		verb := "reconnecting"
		if p.State == agent.StateConnecting {
			verb = "connecting"
		}
		next := p.NextIn - age
		if next <= 0 {
			return fmt.Sprintf("sandmux: %s to %s (attempt %d, dialing)", verb, host, p.Attempt)
		}
		return fmt.Sprintf("sandmux: %s to %s (attempt %d, next in %.1fs)", verb, host, p.Attempt, next.Seconds())
	}
	return fmt.Sprintf("sandmux: waiting for the session to %s (%s)", host, p.State)
}
