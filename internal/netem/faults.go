package netem

// Cut resets every live connection pair now, in both directions, so each peer
// sees RST with no FIN or pending data, like a middlebox dropping state. It
// returns how many pairs were cut. The listener stays open, so clients can
// reconnect, which is what reconnect tests need to exercise.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	pairs := p.snapshot()
	p.mu.Unlock()

	n := 0
	for _, pr := range pairs {
		if pr.abort() {
			n++
		}
	}
	return n
}

// Freeze stops moving bytes in both directions of every current and future
// pair without closing anything, like a black-holed route: peers see neither
// data nor errors, only silence, which is what keepalive and timeout logic
// must detect. Bytes already read stay queued.
func (p *Proxy) Freeze() { p.gate.freeze() }

// Strand freezes every current pair for good, like Freeze, while later
// connections flow: a route that changed under the connections open
// now (Wi-Fi roaming, a new address), whose packets go nowhere while new
// connections take the new route. Thaw does not release them; Cut and
// Close still reset them. It returns how many pairs were stranded.
func (p *Proxy) Strand() int {
	p.mu.Lock()
	pairs := p.snapshot()
	p.mu.Unlock()
	for _, pr := range pairs {
		pr.own.freeze()
	}
	return len(pairs)
}

// FreezeToTarget stops delivering bytes from clients to the target while
// the target's bytes still reach the clients: a path that lost one way
// only. The clients' bytes are still read, up to MaxInFlight per
// connection, as a path takes bytes from the sender before losing them; a
// sender acknowledged over the open way keeps sending into the frozen one,
// and HeldToTarget shows what waits.
func (p *Proxy) FreezeToTarget() { p.toTarget.freeze() }

// Thaw resumes forwarding after Freeze or FreezeToTarget. Nothing buffered
// is lost; chunks whose delay expired while frozen are released at once,
// in order.
func (p *Proxy) Thaw() {
	p.gate.thaw()
	p.toTarget.thaw()
}

// HeldToTarget is how many bytes from clients wait now, across live
// connections, behind the chunk each writer to the target holds. While
// FreezeToTarget holds, no writer gets past its chunk, so none of them
// has reached the target, and a Cut drops them: a resuming sender must
// send them again.
func (p *Proxy) HeldToTarget() int64 {
	p.mu.Lock()
	pairs := p.snapshot()
	p.mu.Unlock()
	var n int64
	for _, pr := range pairs {
		pr.mu.Lock()
		out := pr.out
		pr.mu.Unlock()
		if out != nil {
			n += int64(out.q.waitingBytes())
		}
	}
	return n
}

// Throttle sets Config.Rate of both directions for the bytes read from
// now on, like a path that degrades to a trickle (a congested or lossy
// link) and later recovers (rate 0: unlimited again). Bytes read before
// keep the departure they were given, and each connection still writes
// its bytes in order; the backlog they leave on the link is forgotten,
// so a link that recovers is fast at once for new connections.
func (p *Proxy) Throttle(rate int64) {
	p.upLink.setRate(rate)
	p.downLink.setRate(rate)
}
