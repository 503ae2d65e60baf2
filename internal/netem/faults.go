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

// FreezeToTarget stops delivering bytes from clients to the target while
// the target's bytes still reach the clients: a path that lost one way
// only. The clients' bytes are still read, up to MaxInFlight per
// connection, as a path takes bytes from the sender before losing them; a
// sender acknowledged over the open way keeps sending into the frozen one,
// and HeldToTarget counts what it sent.
func (p *Proxy) FreezeToTarget() { p.toTarget.freeze() }

// Thaw resumes forwarding after Freeze or FreezeToTarget. Nothing buffered
// is lost; chunks whose delay expired while frozen are released at once,
// in order.
func (p *Proxy) Thaw() {
	p.gate.thaw()
	p.toTarget.thaw()
}

// HeldToTarget counts the bytes read from clients, since the proxy
// started, while the way to the target was frozen by FreezeToTarget. None
// of them had reached the target when read, so those still held when a Cut
// comes never do: a resuming sender must send them again.
func (p *Proxy) HeldToTarget() int64 { return p.held.Load() }
