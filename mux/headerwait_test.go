package mux

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// resumablePair attaches a client and a server Resumable to one loopback
// WebSocket and starts a session on each, as a v2 session does after
// its hello.
func resumablePair(t *testing.T, cfg Config) (rc, rs *Resumable, cli, srv *Session) {
	t.Helper()
	rc, rs = testResumable(t), testResumable(t)
	attachPair(t, rc, rs)
	var err error
	if cli, err = Client(rc, cfg, nil); err != nil {
		t.Fatal(err)
	}
	if srv, err = Server(rs, cfg, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close(); _ = srv.Close() })
	return rc, rs, cli, srv
}

// attachPair gives both Resumables a new WebSocket, each replaying what
// the other has not received.
func attachPair(t *testing.T, rc, rs *Resumable) {
	t.Helper()
	c, s := wsPair(t)
	done := make(chan error, 1)
	go func() {
		_, err := rs.Attach(Link{WS: s}, rc.Received(), nil)
		done <- err
	}()
	if _, err := rc.Attach(Link{WS: c, Client: true}, rs.Received(), nil); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// openBare opens a stream without sending its header and accepts it;
// both are closed when the test ends.
func openBare(t *testing.T, cli, srv *Session) (*yamux.Stream, *Stream) {
	t.Helper()
	ys, err := cli.ys.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ys.Close() })
	st, err := srv.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return ys, st
}

// A stream whose opening reached the server just before the path died
// gets its header after the resume, later than the header timeout: the
// outage must not count against it, or a session that resumed would
// refuse a stream its client had opened in time.
func TestHeaderWaitOutlastsOutage(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HeaderTimeout = 300 * time.Millisecond
	rc, rs, cli, srv := resumablePair(t, cfg)

	ys, st := openBare(t, cli, srv)
	type result struct {
		req Request
		err error
	}
	got := make(chan result, 1)
	go func() {
		req, err := srv.ReadRequest(st)
		got <- result{req, err}
	}()

	lost := errors.New("test: path lost")
	rs.Drop(lost)
	rc.Drop(lost)
	hdr, err := Request{Target: "127.0.0.1:22"}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ys.Write(hdr); err != nil { // kept for the replay
		t.Fatal(err)
	}
	select {
	case r := <-got:
		t.Fatalf("header read ended while detached: %+v, %v", r.req, r.err)
	case <-time.After(4 * cfg.HeaderTimeout):
	}
	attachPair(t, rc, rs)
	select {
	case r := <-got:
		if r.err != nil || r.req.Target != "127.0.0.1:22" {
			t.Fatalf("header after the resume: %+v, %v", r.req, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no header after the resume")
	}
}

// The header timeout still holds on a resumable session while attached:
// a peer that opens a stream and sends nothing is cut off.
func TestHeaderWaitAttachedTimesOut(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HeaderTimeout = 200 * time.Millisecond
	_, _, cli, srv := resumablePair(t, cfg)
	_, st := openBare(t, cli, srv)
	start := time.Now()
	_, err := srv.ReadRequest(st)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("header read: %v, want a timeout", err)
	}
	if d := time.Since(start); d < cfg.HeaderTimeout {
		t.Fatalf("timed out after %v, before the header timeout %v", d, cfg.HeaderTimeout)
	}
}

// countingAttachment counts how often a header wait asks about the
// transport: once per wake-up.
type countingAttachment struct {
	attachment
	calls atomic.Int64
}

func (c *countingAttachment) Detached() time.Duration {
	c.calls.Add(1)
	return c.attachment.Detached()
}

// A path that dies just before the header deadline must not have the
// wait re-armed ever closer, waking (or spinning) for the whole outage.
func TestHeaderWaitDoesNotSpinThroughOutage(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HeaderTimeout = 300 * time.Millisecond
	rc, rs, cli, srv := resumablePair(t, cfg)
	_, st := openBare(t, cli, srv)
	link := &countingAttachment{attachment: rs}
	h := &headerReader{st: st, link: link, silence: srv.tr.silence, budget: cfg.HeaderTimeout, full: cfg.HeaderTimeout, armedAt: time.Now(), detAtArm: rs.Detached()}
	_ = st.SetReadDeadline(h.armedAt.Add(h.budget))
	done := make(chan error, 1)
	go func() {
		_, err := ReadRequest(h)
		done <- err
	}()
	// Drop before the deadline with only a sliver of the budget left:
	// 100 ms, which a wait re-armed for what is left would wake every
	// time, 20 times in the 2 s below. (2 ms before it, as this once
	// did, lost the race to the deadline now and then on a busy machine.)
	time.Sleep(time.Until(h.armedAt.Add(cfg.HeaderTimeout - 100*time.Millisecond)))
	lost := errors.New("test: path lost")
	rs.Drop(lost)
	rc.Drop(lost)
	link.calls.Store(0)
	select {
	case err := <-done:
		t.Fatalf("header wait ended while detached: %v", err)
	case <-time.After(2 * time.Second):
	}
	// One wake-up per header timeout at most while detached (2 s / 300 ms,
	// and a few for a loaded machine); a wait re-armed ever closer wakes
	// hundreds of times.
	if n := link.calls.Load(); n > 12 {
		t.Fatalf("the header wait woke %d times in 2 s of outage", n)
	}
	attachPair(t, rc, rs)
	err := within(t, done, 10*time.Second, "the header wait did not end after the resume")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("header wait after the resume: %v, want its timeout (no header was sent)", err)
	}
}

// within returns what ch delivers, failing the test if nothing comes
// within d.
func within(t *testing.T, ch <-chan error, d time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(d):
		t.Fatal(what)
		return nil
	}
}

// A path that stalls between a stream's opening and its header, still
// attached (the keepalive has yet to judge it), does not cost the stream:
// the session heard nothing at all meanwhile, and the header comes
// before anything heard after it. The header timeout (10 s) is shorter
// than the time a silent path takes to be dropped (1.5 × 15 s).
func TestHeaderWaitOutlastsStall(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HeaderTimeout = 1500 * time.Millisecond
	_, _, cli, srv := resumablePair(t, cfg)
	// Each side pings once at the start; heard after the stream's opening
	// (late, on a loaded machine), a pong would end the silence.
	if !pollUntil(10*time.Second, func() bool { return cli.Stats().LastRTT > 0 && srv.Stats().LastRTT > 0 }) {
		t.Fatal("the first pings were not answered")
	}
	ys, st := openBare(t, cli, srv)
	got := make(chan error, 1)
	go func() {
		_, err := srv.ReadRequest(st)
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("header read ended while the session heard nothing: %v", err)
	case <-time.After(3 * cfg.HeaderTimeout):
	}
	hdr, err := Request{Target: "127.0.0.1:22"}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ys.Write(hdr); err != nil {
		t.Fatal(err)
	}
	if err := within(t, got, 10*time.Second, "no header after the stall"); err != nil {
		t.Fatalf("header after the stall: %v", err)
	}
}

// A peer that opens a stream and never sends its header, while the
// session hears from it all the time, is still cut off: only silence of
// the whole session is not charged.
func TestHeaderWaitTimesOutWhileHeard(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HeaderTimeout = 1500 * time.Millisecond
	_, _, cli, srv := resumablePair(t, cfg)
	_, st := openBare(t, cli, srv)
	chatter, _ := openBare(t, cli, srv)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := chatter.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	start := time.Now()
	_, err := srv.ReadRequest(st)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("header read: %v, want a timeout", err)
	}
	if d := time.Since(start); d > 3*cfg.HeaderTimeout {
		t.Fatalf("timed out after %v, want about the header timeout %v", d, cfg.HeaderTimeout)
	}
}
