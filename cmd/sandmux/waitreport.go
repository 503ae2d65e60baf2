package main

import (
	"fmt"
	"sync"
	"time"

	"github.com/sandmux/sandmux/agent"
)

// waitReport keeps what a proxy last heard while it waited for its
// session, for the line it prints when ssh gives up first. ssh's
// ConnectTimeout bounds its wait for the server's banner: when it runs
// out, ssh says only "Connection timed out during banner exchange" and
// hangs up on the proxy, which would otherwise end without a word (and
// on a terminal, clear its progress line), so that the reason, a refused
// port or a paused sandbox, was never shown.
type waitReport struct {
	start time.Time

	mu   sync.Mutex
	last *agent.Progress
}

func newWaitReport() *waitReport { return &waitReport{start: time.Now()} }

// update records the agent's latest report; it never blocks.
func (w *waitReport) update(p agent.Progress) {
	w.mu.Lock()
	w.last = &p
	w.mu.Unlock()
}

// gaveUp words the end of a wait for the session to url that ssh cut
// short by hanging up.
func (w *waitReport) gaveUp(url string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	waited := time.Since(w.start).Round(time.Second)
	switch {
	case w.last != nil && w.last.State == agent.StateResuming:
		return fmt.Errorf("ssh gave up after %s, while the session to %s was resuming (`sandmux status` shows why it is not back)", waited, url)
	case w.last != nil && w.last.Reason != "":
		return fmt.Errorf("ssh gave up after %s, while sandmux was connecting: %s", waited, w.last.Reason)
	}
	return fmt.Errorf("ssh gave up after %s, while sandmux was connecting to %s: no answer yet (`sandmux doctor` checks the path)", waited, url)
}
