package netem

import (
	"context"
	"net"
	"sync"
	"time"
)

// pair is one accepted client connection and its upstream connection to the
// target. It is registered with the proxy from accept time, before the
// upstream dial finishes, so that Cut and Close also reach connections that
// are still being set up.
type pair struct {
	proxy    *Proxy
	down     *net.TCPConn // accepted from the client
	accepted time.Time    // where an emulated handshake starts
	ctx      context.Context
	cancel   context.CancelFunc // aborts a dial in progress or awaited

	own gate // Strand

	mu   sync.Mutex
	up   *net.TCPConn // nil until the dial succeeds
	out  *direction   // toward the target; nil until run starts it
	over bool         // torn down, by abort or by a clean finish
	done chan struct{}
}

func newPair(p *Proxy, down *net.TCPConn) *pair {
	ctx, cancel := context.WithCancel(p.ctx)
	return &pair{proxy: p, down: down, accepted: time.Now(), ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// run is the pair's owner goroutine: it waits for all four forwarding
// goroutines before returning, so the proxy only has to wait for run.
func (pr *pair) run() {
	defer pr.proxy.forget(pr)

	// With the dial at toTarget, the target's bytes cannot leave before
	// toClient anyway; the floor says so rather than leaving it implied.
	var toTarget, toClient time.Time
	if cfg := pr.proxy.cfg; cfg.Handshake {
		toTarget = pr.accepted.Add(3 * cfg.Delay)
		toClient = pr.accepted.Add(4 * cfg.Delay)
	}
	var wg sync.WaitGroup
	defer wg.Wait() // the client's reader, also when the dial fails
	// The client's bytes are read and stamped from accept on, while the
	// dial waits: a byte sent with the handshake's ACK is due when it
	// would reach the server, not a Delay after the dial.
	out := pr.direction(pr.down, nil, toTarget)
	out.hold, out.link = &pr.proxy.toTarget, pr.proxy.upLink
	pr.mu.Lock()
	pr.out = out
	pr.mu.Unlock()
	wg.Go(out.readLoop)
	up, ok := pr.dial(toTarget)
	if !ok {
		return
	}
	out.dst = up // before writeLoop starts; readLoop never touches dst
	back := pr.direction(up, pr.down, toClient)
	back.link = pr.proxy.downLink
	wg.Go(out.writeLoop)
	wg.Go(back.readLoop)
	wg.Go(back.writeLoop)
	wg.Wait()
	pr.finish()
}

// dial connects to the target no earlier than at: a real server's accept
// returns only when the client's ACK arrives, so a target that does work
// per connection (sshd forks and re-executes itself) must do it after the
// emulated handshake, not hidden inside it. A refused dial resets the
// client at once, so a closed port still fails promptly after the
// handshake. It reports false when the pair is over.
func (pr *pair) dial(at time.Time) (*net.TCPConn, bool) {
	if wait := time.Until(at); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-pr.ctx.Done():
			// Cut or Close; abort is idempotent and resets the client.
			t.Stop()
			pr.abort()
			return nil, false
		}
	}
	var d net.Dialer
	conn, err := d.DialContext(pr.ctx, "tcp", pr.proxy.cfg.Target)
	if err != nil {
		// The client sees a reset, much as it would from a refused port.
		pr.abort()
		return nil, false
	}
	up := conn.(*net.TCPConn)
	return up, pr.attach(up)
}

func (pr *pair) direction(src, dst *net.TCPConn, notBefore time.Time) *direction {
	return &direction{
		src:       src,
		dst:       dst,
		delay:     pr.proxy.cfg.Delay,
		notBefore: notBefore,
		q:         newQueue(pr.proxy.cfg.maxInFlight()),
		gate:      &pr.proxy.gate,
		own:       &pr.own,
		done:      pr.done,
		abort:     func() { pr.abort() },
		reached:   pr.proxy.carry,
		cut:       func() { pr.proxy.Cut() },
	}
}

// attach installs the upstream connection unless the pair was cut while
// dialing, in which case the new connection is reset too.
func (pr *pair) attach(up *net.TCPConn) bool {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.over {
		resetConn(up)
		return false
	}
	pr.up = up
	return true
}

// abort resets both connections so each peer sees RST, not FIN: the point is
// to emulate a path that dies, not one that closes politely. It reports
// whether this call did the tearing down, which is what Cut counts.
func (pr *pair) abort() bool {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.over {
		return false
	}
	pr.over = true
	close(pr.done)
	pr.cancel()
	resetConn(pr.down)
	if pr.up != nil {
		resetConn(pr.up)
	}
	return true
}

// finish closes a pair whose both directions ended by FIN. Both peers have
// already seen the half-closes, so an ordinary Close is the honest ending.
func (pr *pair) finish() {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.over {
		return
	}
	pr.over = true
	close(pr.done)
	pr.cancel()
	pr.down.Close()
	pr.up.Close()
}

// resetConn makes the kernel send RST instead of FIN and discard unsent data.
func resetConn(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}
