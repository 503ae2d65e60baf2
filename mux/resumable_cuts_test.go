package mux

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/internal/netem"
)

// cutPair is two Resumables, a (the client's) and b (the server's),
// carried by WebSockets through a fault proxy that cuts at byte marks,
// and the redialer that reattaches them after every cut as the client
// and server do: the server's side detached first, each replaying from
// the other's received count.
type cutPair struct {
	t     *testing.T
	fault *netem.Proxy
	url   string
	conns chan taggedWS
	a, b  *Resumable
	// attaches counts WebSockets both sides attached, the first included.
	attaches int
	failed   error
}

type taggedWS struct {
	tag string
	ws  *websocket.Conn
}

func newCutPair(t *testing.T) *cutPair {
	t.Helper()
	p := &cutPair{t: t, conns: make(chan taggedWS, 16)}
	hold := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		p.conns <- taggedWS{r.URL.Query().Get("n"), ws}
		<-hold
	}))
	fault, err := netem.Start(netem.Config{Target: hs.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	p.fault, p.url = fault, "ws://"+fault.Addr()
	t.Cleanup(func() { close(hold); _ = fault.Close(); hs.CloseClientConnections(); hs.Close() })
	for _, r := range []**Resumable{&p.a, &p.b} {
		cfg := DefaultResumeConfig()
		cfg.Grace = time.Minute
		var err error
		if *r, err = NewResumable(cfg); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// dial returns both ends of a new WebSocket, retrying dials that a cut
// ended (a mark may land in an upgrade). The server's end of an upgrade
// the client did not see complete is closed.
func (p *cutPair) dial(n int) (cli, srv *websocket.Conn, err error) {
	for try := range 100 {
		tag := fmt.Sprintf("%d.%d", n, try)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, _, err := websocket.Dial(ctx, p.url+"/?n="+tag, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
		cancel()
		if err != nil {
			continue
		}
		for s := range p.conns {
			if s.tag == tag {
				return c, s.ws, nil
			}
			_ = s.ws.CloseNow()
		}
	}
	return nil, nil, errors.New("no WebSocket in 100 dials")
}

// run attaches and reattaches until a ends; it owns every WebSocket.
func (p *cutPair) run() {
	var open []*websocket.Conn
	defer func() {
		for _, ws := range open {
			_ = ws.CloseNow()
		}
	}()
	for n := 0; ; n++ {
		// The server's side first, so that its received count is final;
		// the client stops reading its old WebSocket before it counts.
		p.b.Drop(errors.New("cut"))
		p.a.Drop(errors.New("cut"))
		select {
		case <-p.a.Done():
			return
		default:
		}
		cli, srv, err := p.dial(n)
		if err != nil {
			p.failed = err
			p.a.Fail(err)
			p.b.Fail(err)
			return
		}
		open = append(open, cli, srv)
		ra, rb := p.a.Received(), p.b.Received()
		var lostB <-chan struct{}
		var errB error
		done := make(chan struct{})
		go func() {
			defer close(done)
			lostB, errB = p.b.Attach(Link{WS: srv}, ra, nil)
		}()
		lostA, errA := p.a.Attach(Link{WS: cli}, rb, nil)
		<-done
		if errA != nil || errB != nil {
			if !errors.Is(errA, net.ErrClosed) || !errors.Is(errB, net.ErrClosed) {
				p.failed = fmt.Errorf("attach %d (a from %d, b from %d): %v, %v", n, rb, ra, errA, errB)
				p.a.Fail(p.failed)
				p.b.Fail(p.failed)
			}
			return
		}
		p.attaches++
		select {
		case <-lostA:
		case <-lostB:
		}
	}
}

// stream writes data into w in writes sized by sizes and, meanwhile,
// reads it back from r, comparing every byte.
func streamThrough(w, r *Resumable, data []byte, sizes func() int) error {
	werr := make(chan error, 1)
	go func() {
		rest := data
		for len(rest) > 0 {
			n := min(len(rest), sizes())
			if _, err := w.Write(rest[:n]); err != nil {
				werr <- fmt.Errorf("write at %d: %w", len(data)-len(rest), err)
				return
			}
			rest = rest[n:]
		}
		werr <- nil
	}()
	buf := make([]byte, 300<<10)
	for off := 0; off < len(data); {
		n, err := r.Read(buf)
		if n > 0 {
			if off+n > len(data) {
				return fmt.Errorf("read %d bytes past the %d written", off+n-len(data), len(data))
			}
			if !bytes.Equal(buf[:n], data[off:off+n]) {
				return fmt.Errorf("bytes %d..%d differ from those written", off, off+n)
			}
			off += n
		}
		if err != nil {
			return fmt.Errorf("read at %d of %d: %w", off, len(data), err)
		}
	}
	return <-werr
}

// Cuts at byte marks, some in quick succession so that the second lands
// in the next upgrade or in the replay after it, while both directions
// move data in writes of exactly the sizes at the transport's edges: one
// byte, a 16 KiB frame, 256 KiB, the largest message (256 KiB + 12) and
// one byte more, which takes two. Every byte must arrive once, in order.
func TestResumableCutsAtMarks(t *testing.T) {
	for range 3 {
		seed := uint64(time.Now().UnixNano())
		t.Run(fmt.Sprint(seed), func(t *testing.T) { cutsAtMarks(t, seed) })
	}
}

func cutsAtMarks(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 29))
	p := newCutPair(t)
	const size = 3 << 20
	edges := []int{1, 16 << 10, 256 << 10, maxReplayMessage, maxReplayMessage + 1}
	var marks []int64
	for range 4 + rng.IntN(4) {
		m := 1024 + rng.Int64N(2*size)
		marks = append(marks, m)
		switch rng.IntN(3) {
		case 0: // in the next upgrade
			marks = append(marks, m+1+rng.Int64N(600))
		case 1: // in the replay after it
			marks = append(marks, m+600+rng.Int64N(300<<10))
		}
	}
	t.Logf("seed %d, cuts at %v", seed, marks)
	p.fault.CutAt(marks...)

	ran := make(chan struct{})
	go func() { defer close(ran); p.run() }()

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, dir := range [][2]*Resumable{{p.a, p.b}, {p.b, p.a}} {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		wseed := rng.Uint64()
		wg.Add(1)
		go func() {
			defer wg.Done()
			wr := rand.New(rand.NewPCG(wseed, 1))
			errs[i] = streamThrough(dir[0], dir[1], data, func() int {
				if wr.IntN(4) == 0 {
					return 1 + wr.IntN(300<<10)
				}
				return edges[wr.IntN(len(edges))]
			})
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(60 * time.Second):
		// Bytes lost leave a reader waiting for them.
		stuck := errors.New("the streams did not finish in 60 s")
		p.a.Fail(stuck)
		p.b.Fail(stuck)
		<-finished
	}
	_ = p.a.Close()
	_ = p.b.Close()
	<-ran
	if p.failed != nil {
		t.Fatal(p.failed)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("direction %d: %v", i, err)
		}
	}
	t.Logf("%d cuts, %d attachments, replayed %d+%d bytes", p.fault.CutsAt(), p.attaches, p.a.Replayed(), p.b.Replayed())
	if p.fault.CutsAt() > 0 && p.attaches < 2 {
		t.Errorf("%d cuts but no resume", p.fault.CutsAt())
	}
}

// §9.3, §9.4: a peer that acknowledges a byte it cannot have received
// (beyond those sent), or resumes from before what it acknowledged,
// ends the session for good; acknowledgements at or below an earlier
// one change nothing.
func TestAckOutsideWhatWasSentEndsSession(t *testing.T) {
	r, peer, read := readingResumable(t)
	if _, err := r.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, b, err := peer.Read(ctx); err != nil || len(b) != 101 || b[0] != msgData {
		t.Fatalf("data message %d bytes, %v", len(b), err)
	}
	ack := func(v uint64) {
		t.Helper()
		if err := peer.Write(ctx, websocket.MessageBinary, binary.BigEndian.AppendUint64([]byte{msgAck}, v)); err != nil {
			t.Fatal(err)
		}
	}
	ack(60)
	ack(100)
	ack(40)
	if !pollUntil(5*time.Second, func() bool { return r.Unacked() == 0 }) {
		t.Fatalf("%d bytes unacknowledged after an ack of all 100", r.Unacked())
	}
	if err := r.Err(); err != nil {
		t.Fatalf("an ack at or below an earlier one ended the session: %v", err)
	}

	// The peer then claims to have received, after a resume, less than
	// it acknowledged: this side holds nothing from there.
	r.Drop(errors.New("cut"))
	_, s2 := wsPair(t)
	if _, err := r.Attach(Link{WS: s2}, 99, nil); !errors.Is(err, ErrResumeProtocol) {
		t.Fatalf("resume from byte 99 after an ack of 100: %v, want %v", err, ErrResumeProtocol)
	}
	select {
	case err := <-read:
		if !errors.Is(err, ErrResumeProtocol) {
			t.Fatalf("read ended with %v, want %v", err, ErrResumeProtocol)
		}
	case <-ctx.Done():
		t.Fatal("the session did not end")
	}
}

// An ACK of one byte more than was sent ends the session for good, not
// just its WebSocket: a peer that resumed from it would be handed bytes
// it never had.
func TestAckBeyondSentEndsSession(t *testing.T) {
	r, peer, read := readingResumable(t)
	if _, err := r.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := peer.Write(ctx, websocket.MessageBinary, binary.BigEndian.AppendUint64([]byte{msgAck}, 101)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-read:
		if !errors.Is(err, ErrResumeProtocol) {
			t.Fatalf("read ended with %v, want %v", err, ErrResumeProtocol)
		}
	case <-ctx.Done():
		t.Fatal("an ack beyond the bytes sent did not end the session")
	}
	if _, err := r.Write([]byte("x")); !errors.Is(err, ErrResumeProtocol) {
		t.Fatalf("write after the session ended: %v", err)
	}
}

// readingResumable is a Resumable attached to one end of a WebSocket
// pair, peer the other, read until it fails: read then says how. The
// reader is the one that takes control messages (ACK, END).
func readingResumable(t *testing.T) (r *Resumable, peer *websocket.Conn, read <-chan error) {
	t.Helper()
	r = testResumable(t)
	peer, s := wsPair(t)
	if _, err := r.Attach(Link{WS: s}, 0, nil); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := r.Read(buf); err != nil {
				ended <- err
				return
			}
		}
	}()
	return r, peer, ended
}
