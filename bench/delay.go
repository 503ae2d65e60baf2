//go:build linux

package main

import (
	"fmt"
	"time"

	"github.com/sandmux/sandmux/internal/netem"
)

// network is the path between the client side and the server side of a
// scenario: loopback, or loopback through internal/netem's delay line.
type network struct {
	Name  string
	Delay time.Duration // one way; 0 is plain loopback
	// Rate, if set, is the bandwidth of each direction in bytes per
	// second (netem.Config.Rate): a link of that speed at the delay.
	Rate int64
	// TLS puts a TLS front (tlsFront) before the sandmux server, so
	// tunnels use wss:// as they do through E2B's edge.
	TLS bool
}

func (n network) String() string { return n.Name }

func loopback() network { return network{Name: "loopback"} }

func wan(oneWay time.Duration) network {
	return network{Name: fmt.Sprintf("%v RTT", 2*oneWay), Delay: oneWay}
}

// wanLink is wan with a link of rate bytes per second each way.
func wanLink(oneWay time.Duration, rate int64) network {
	n := wan(oneWay)
	n.Name += ", " + rateName(rate)
	n.Rate = rate
	return n
}

// rateName writes rate, in bytes per second, in bits as links are sold.
func rateName(rate int64) string {
	bits := float64(rate) * 8
	if bits >= 1e9 {
		return fmt.Sprintf("%g Gbit/s", bits/1e9)
	}
	return fmt.Sprintf("%g Mbit/s", bits/1e6)
}

// via returns the address a client should dial to reach addr over n. For a
// delayed network it starts a delay line in front of addr, closed by the
// env at the end of the run (or by closeLinks).
//
// netem terminates TCP on both sides and buffers up to 64 MiB per
// direction while the bytes wait out the delay, so a plain TCP connection
// through it is not throttled by its own window the way one over a real
// long path would be: the raw TCP figure is the path's capacity, the upper
// bound for any tunnel, not what one TCP flow would reach on a real WAN.
//
// Terminating TCP locally would also make a new connection free: the
// client's connect returns at once, skipping the SYN/SYN-ACK round trip.
// That would flatter every peer that opens a connection per ssh (direct
// ssh, a WebSocket per connection) against the agent, which reuses one, so
// the line emulates the handshake (netem.Config.Handshake): the server
// accepts a new connection 3 one-way delays after connect, when its
// first bytes arrive, and the server's first bytes reach the client a
// delay after they leave, 4 delays at the earliest, as on a real path.
// Work a server does per connection (sshd forks and re-executes itself)
// thus follows the handshake, as it would, instead of hiding inside it.
func (e *env) via(n network, addr string) (string, error) {
	if n.Delay == 0 {
		return addr, nil
	}
	p, err := netem.Start(netem.Config{Target: addr, Delay: n.Delay, Rate: n.Rate, Handshake: true})
	if err != nil {
		return "", fmt.Errorf("start delay line: %w", err)
	}
	e.mu.Lock()
	e.links = append(e.links, p)
	e.mu.Unlock()
	return p.Addr(), nil
}

// closeLinks closes every delay line started so far; scenarios call it so
// that idle proxies do not pile up over a run.
func (e *env) closeLinks() {
	e.mu.Lock()
	links := e.links
	e.links = nil
	e.mu.Unlock()
	for _, p := range links {
		_ = p.Close()
	}
}
