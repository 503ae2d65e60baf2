package netem

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards loopback TCP connections to one target with added delay and
// injectable faults. Its methods are safe for concurrent use.
type Proxy struct {
	cfg      Config
	ln       *net.TCPListener
	ctx      context.Context // cancelled by Close to abort dials in progress
	cancel   context.CancelFunc
	gate     gate // Freeze: both ways
	toTarget gate // FreezeToTarget: clients to the target only
	// Config.Rate: the links to the target and back to the clients.
	upLink, downLink *link
	accepted         atomic.Int64
	carried          atomic.Int64 // Carried
	// The marks of CutAt, FreezeAt and FreezeToTargetAt.
	cuts, freezes, holds marks

	mu     sync.Mutex
	pairs  map[*pair]struct{}
	closed bool

	// wg owns the accept loop and every pair's run goroutine; each run in
	// turn owns its forwarding goroutines, so waiting here waits for all.
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Start listens on 127.0.0.1:0 and forwards each accepted connection to
// cfg.Target. Only loopback is used so a test proxy is never reachable from
// outside the machine.
func Start(cfg Config) (*Proxy, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		cfg:      cfg,
		ln:       ln,
		ctx:      ctx,
		cancel:   cancel,
		pairs:    make(map[*pair]struct{}),
		upLink:   newLink(cfg.Rate),
		downLink: newLink(cfg.Rate),
	}
	for _, m := range []*marks{&p.cuts, &p.freezes, &p.holds} {
		m.next.Store(-1)
	}
	p.wg.Go(p.acceptLoop)
	return p, nil
}

// Addr is the "127.0.0.1:PORT" clients dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Accepted counts connections accepted so far, so tests can tell whether a
// client reconnected after a fault.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// Close stops listening, resets every pair and waits for every goroutine the
// proxy started, so a test that closes its proxy leaks nothing. Later calls
// return the first call's result.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		pairs := p.snapshot()
		p.mu.Unlock()

		p.cancel()
		p.closeErr = p.ln.Close()
		for _, pr := range pairs {
			pr.abort()
		}
		p.wg.Wait()
	})
	return p.closeErr
}

func (p *Proxy) acceptLoop() {
	for {
		c, err := p.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient failures such as EMFILE: back off instead of
			// spinning, but stay responsive to Close.
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.accepted.Add(1)
		p.adopt(c)
	}
}

// adopt registers and starts a pair under the lock that Close takes, so a
// connection accepted during Close is either seen by Close or reset here.
func (p *Proxy) adopt(c *net.TCPConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		resetConn(c)
		return
	}
	pr := newPair(p, c)
	p.pairs[pr] = struct{}{}
	p.wg.Go(pr.run)
}

func (p *Proxy) forget(pr *pair) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pairs, pr)
}

// snapshot must be called with p.mu held; pairs are aborted outside the
// lock because their teardown calls forget.
func (p *Proxy) snapshot() []*pair {
	pairs := make([]*pair, 0, len(p.pairs))
	for pr := range p.pairs {
		pairs = append(pairs, pr)
	}
	return pairs
}
