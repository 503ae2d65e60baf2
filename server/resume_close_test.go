package server_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
	"github.com/sandmux/sandmux/server"
)

// TestSessionCloseAfterUpload closes the client's session right after a
// stream's upload and FIN, with nothing acknowledged yet, and half the
// time a cut of the WebSocket around where the upload, its FIN and the
// session's END cross. Without a cut the target must get the whole
// upload and its end: the data and FIN arrived before END, and a stream
// whose FIN arrived is read to its end even as its session ends. About
// 1 close in 20 of a 4 MiB upload reset the target instead, when the
// window update of a read on the server failed with the session's end
// and the read returned that failure (third_party/yamux/PATCHES.md). With
// a cut (END lost, and the grace running out), the target may get a
// reset instead, but never a clean end after part of the upload.
func TestSessionCloseAfterUpload(t *testing.T) {
	target, drained := testutil.DrainServer(t)
	var logs testutil.Buffer
	// Only the test's cuts lose the WebSocket: a session closed while
	// the watchdog of a starved machine has it detached sends no END.
	tolerant := func(c *mux.Config) { c.DeadAfter = 10 * time.Second }
	srv := fastServerWith(t, target.Addr, 500*time.Millisecond, &logs, func(c *server.Config) { tolerant(&c.Mux) })
	fault, first := throughFaultWith(t, srv, func(c *client.Config) { tolerant(&c.Mux) })
	_ = first.Close()
	cfg := fastClient("ws://" + fault.Addr())
	tolerant(&cfg.Mux)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 17))
	whole, reset := 0, 0
	for i := range 20 {
		sess, err := client.Dial(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 10*time.Second, "the server's WELCOME", sess.Welcomed)
		conn, err := openRetry(sess)
		if err != nil {
			t.Fatal(err)
		}
		size, mark := 4<<20, int64(-1)
		if i%2 == 1 {
			size = endsSizes[rng.IntN(len(endsSizes))]
			mark = fault.Carried() + int64(size) + rng.Int64N(4<<10) - 1<<10
		}
		cuts := fault.CutsAt()
		fault.CutAt(mark)
		_, werr := conn.Write(make([]byte, size))
		if werr == nil {
			werr = conn.(*mux.Stream).CloseWrite()
		}
		if werr != nil && mark < 0 {
			t.Fatalf("case %d: %v", i, werr)
		}
		_ = sess.Close()
		d := testutil.AwaitDrained(t, drained)
		fault.CutAt()
		cut := fault.CutsAt() > cuts
		switch {
		case d.Err == nil && d.N == int64(size):
			whole++
		case cut && errors.Is(d.Err, syscall.ECONNRESET) && d.N <= int64(size):
			reset++
		default:
			t.Log(logs.String())
			t.Fatalf("case %d: %d bytes and FIN sent (%v), then the session closed, cut: %v; the target read %d bytes, then %v",
				i, size, werr, cut, d.N, d.Err)
		}
	}
	t.Logf("%d cuts; the target had the whole upload %d times, a reset %d times", fault.CutsAt(), whole, reset)
}
