//go:build linux

package e2e

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/sandmux/sandmux/internal/netem"
	"github.com/sandmux/sandmux/internal/testutil"
)

// pathFault is one fault of the path between the ssh side and the
// server, made by the fault proxy. Each takes the proxy and a source of
// randomness and returns what it did, for the round's log; one that
// lasts (a freeze, a trickle) returns when it is over, or early when
// stop closes.
type pathFault struct {
	name string
	do   func(p *netem.Proxy, rng *rand.Rand, stop <-chan struct{}) string
}

// keepaliveSpan is a fault's length in keepalive intervals (1 s here):
// between lo and hi of them, so a black hole outlasts the 1.5× after
// which a silent peer is dropped.
func keepaliveSpan(rng *rand.Rand, lo, hi float64) time.Duration {
	return time.Duration((lo + rng.Float64()*(hi-lo)) * float64(time.Second))
}

// pathFaults are the faults a chaos round draws from.
var pathFaults = []pathFault{
	{"cut", func(p *netem.Proxy, _ *rand.Rand, _ <-chan struct{}) string {
		return fmt.Sprintf("reset %d connections", p.Cut())
	}},
	{"cut-mid", func(p *netem.Proxy, rng *rand.Rand, _ <-chan struct{}) string {
		// A random byte of what flows next: almost surely inside a
		// WebSocket frame, a yamux frame or both.
		at := p.Carried() + 1 + rng.Int64N(8<<20)
		p.CutAt(at)
		return fmt.Sprintf("armed at byte %d", at)
	}},
	{"cut-upgrade", func(p *netem.Proxy, rng *rand.Rand, _ <-chan struct{}) string {
		// After a cut, the first bytes on the path are the redials'
		// HTTP upgrade requests (a few hundred bytes each).
		n := p.Cut()
		at := p.Carried() + 1 + rng.Int64N(400)
		p.CutAt(at)
		return fmt.Sprintf("reset %d, then armed %d bytes into the redial", n, at-p.Carried())
	}},
	{"cut-hello", func(p *netem.Proxy, rng *rand.Rand, _ <-chan struct{}) string {
		// Past the upgrade: the 101, HELLO, WELCOME and the replay's
		// first bytes.
		n := p.Cut()
		at := p.Carried() + 200 + rng.Int64N(2000)
		p.CutAt(at)
		return fmt.Sprintf("reset %d, then armed %d bytes into the resume", n, at-p.Carried())
	}},
	{"double", func(p *netem.Proxy, _ *rand.Rand, stop <-chan struct{}) string {
		// Two cuts in quick succession: the second as soon as a redial
		// arrives, in its upgrade or resume handshake.
		acc := p.Accepted()
		n := p.Cut()
		redialed := testutil.Poll(10*time.Second, func() bool {
			select {
			case <-stop:
				return true
			default:
			}
			return p.Accepted() > acc
		})
		return fmt.Sprintf("reset %d, redial seen %v, reset %d", n, redialed, p.Cut())
	}},
	{"storm", func(p *netem.Proxy, rng *rand.Rand, stop <-chan struct{}) string {
		// Resets 20 to 300 ms apart for a while: resumes that meet the
		// next reset in their handshake or their replay, again and again.
		d := keepaliveSpan(rng, 1, 3)
		end := time.Now().Add(d)
		cuts, resets := 0, 0
		for time.Now().Before(end) {
			resets += p.Cut()
			cuts++
			if !sleepOrStop(time.Duration(20+rng.IntN(280))*time.Millisecond, stop) {
				break
			}
		}
		return fmt.Sprintf("%d cuts in %v, %d connections reset", cuts, d.Round(time.Millisecond), resets)
	}},
	{"freeze", func(p *netem.Proxy, rng *rand.Rand, stop <-chan struct{}) string {
		d := keepaliveSpan(rng, 2, 5)
		p.Freeze()
		defer p.Thaw()
		sleepOrStop(d, stop)
		return fmt.Sprintf("black hole both ways for %v", d.Round(time.Millisecond))
	}},
	{"freeze-up", func(p *netem.Proxy, rng *rand.Rand, stop <-chan struct{}) string {
		d := keepaliveSpan(rng, 2, 5)
		p.FreezeToTarget()
		defer p.Thaw()
		sleepOrStop(d, stop)
		return fmt.Sprintf("black hole towards the server for %v", d.Round(time.Millisecond))
	}},
	{"strand", func(p *netem.Proxy, _ *rand.Rand, _ <-chan struct{}) string {
		return fmt.Sprintf("stranded %d connections (new ones flow)", p.Strand())
	}},
	{"trickle", func(p *netem.Proxy, rng *rand.Rand, stop <-chan struct{}) string {
		rate := int64(128<<10) + rng.Int64N(384<<10)
		d := keepaliveSpan(rng, 1, 6)
		p.Throttle(rate)
		defer p.Throttle(0)
		sleepOrStop(d, stop)
		return fmt.Sprintf("%d KiB/s for %v", rate>>10, d.Round(time.Millisecond))
	}},
}

// sleepOrStop lets a fault last d: it is the fault's length, not a wait
// for anything to happen. It reports false if stop closed first.
func sleepOrStop(d time.Duration, stop <-chan struct{}) bool {
	select {
	case <-time.After(d):
		return true
	case <-stop:
		return false
	}
}

// faultLog is what a chaos run did to the path, by fault.
type faultLog struct {
	counts map[string]int
	lines  []string
}

func (l *faultLog) add(at time.Duration, name, what string) {
	if l.counts == nil {
		l.counts = map[string]int{}
	}
	l.counts[name]++
	l.lines = append(l.lines, fmt.Sprintf("%6.2fs %-11s %s", at.Seconds(), name, what))
}

func (l *faultLog) String() string { return strings.Join(l.lines, "\n") }

// injectFaults makes faults drawn with rng, a random 0.2–2.5 s apart,
// until stop closes; then it clears what is armed and heals the path.
func injectFaults(p *netem.Proxy, rng *rand.Rand, stop <-chan struct{}, log *faultLog) {
	start := time.Now()
	defer func() {
		p.CutAt()
		p.Throttle(0)
		p.Thaw()
	}()
	for {
		select {
		case <-stop:
			return
		case <-time.After(200*time.Millisecond + time.Duration(rng.Int64N(int64(2300*time.Millisecond)))):
		}
		f := pathFaults[rng.IntN(len(pathFaults))]
		log.add(time.Since(start), f.name, f.do(p, rng, stop))
	}
}
