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

// Thaw resumes forwarding after Freeze. Nothing buffered is lost; chunks whose
// delay expired while frozen are released at once, in order.
func (p *Proxy) Thaw() { p.gate.thaw() }
