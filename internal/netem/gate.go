package netem

import "sync"

// gate is the proxy-wide freeze switch. It is a channel rather than a flag so
// that frozen goroutines park without polling and still notice shutdown.
type gate struct {
	mu     sync.Mutex
	thawed chan struct{} // nil while open; closed by thaw
}

func (g *gate) freeze() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.thawed == nil {
		g.thawed = make(chan struct{})
	}
}

func (g *gate) thaw() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.thawed != nil {
		close(g.thawed)
		g.thawed = nil
	}
}

// frozen reports whether the gate is closed now.
func (g *gate) frozen() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.thawed != nil
}

// wait blocks while the gate is frozen. It reports false if done closed
// first, so a frozen pair can still be cut or closed.
func (g *gate) wait(done <-chan struct{}) bool {
	for {
		g.mu.Lock()
		ch := g.thawed
		g.mu.Unlock()
		if ch == nil {
			return true
		}
		select {
		case <-ch:
			// Re-check: a Freeze may have followed the Thaw.
		case <-done:
			return false
		}
	}
}
