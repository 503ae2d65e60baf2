package mux

import (
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"
)

// slowUplinkPair is a loopback WebSocket whose client-to-server direction
// goes through a relay that passes rate bytes a second: a slow uplink,
// where the in-flight limit, not the CPU, holds the sender back.
func slowUplinkPair(t *testing.T, rate int) (cli, srv *websocket.Conn) {
	t.Helper()
	url, accepted := wsServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var relay sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	relay.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", strings.TrimPrefix(url, "ws://"))
		if err != nil {
			_ = c.Close()
			return
		}
		mu.Lock()
		conns = append(conns, c, u)
		mu.Unlock()
		relay.Go(func() { _, _ = io.Copy(c, u) })
		buf := make([]byte, 8<<10)
		start, n := time.Now(), 0
		for {
			k, err := c.Read(buf)
			if k > 0 {
				if _, err := u.Write(buf[:k]); err != nil {
					return
				}
				n += k
				// Pacing the uplink, not synchronising.
				time.Sleep(time.Until(start.Add(time.Duration(float64(n) / float64(rate) * float64(time.Second)))))
			}
			if err != nil {
				return
			}
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		relay.Wait()
	})
	return wsDial(t, "ws://"+ln.Addr().String(), accepted)
}

// Small frames go out while a bulk frame waits for room, but do not keep
// it waiting for ever: on a path that small writes alone keep full, a
// bulk stream still moves (it moved nothing while urgent frames could
// take all the room it waited for).
func TestSmallWritesDoNotStarveBulk(t *testing.T) {
	cws, sws := slowUplinkPair(t, 4<<20)
	rc, rs := testResumable(t), testResumable(t)
	if _, err := rs.Attach(Link{WS: sws}, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Attach(Link{WS: cws}, 0, nil); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	ycli, err := yamux.Client(newTransport(rc).forYamux(), cfg.yamuxConfig(DiscardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	ysrv, err := yamux.Server(newTransport(rs).forYamux(), cfg.yamuxConfig(DiscardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer func() {
		_ = ycli.Close()
		_ = ysrv.Close()
		wg.Wait()
	}()

	var small, bulk atomic.Int64
	wg.Go(func() {
		for {
			st, err := ysrv.AcceptStream()
			if err != nil {
				return
			}
			wg.Go(func() {
				var kind [1]byte
				if _, err := io.ReadFull(st, kind[:]); err != nil {
					return
				}
				n := &small
				if kind[0] == 'B' {
					n = &bulk
				}
				_, _ = io.Copy(countWriter{n}, st)
			})
		}
	})
	writer := func(kind byte, chunk int) {
		st, err := ycli.OpenStream()
		if err != nil {
			t.Error(err)
			return
		}
		wg.Go(func() {
			if _, err := st.Write([]byte{kind}); err != nil {
				return
			}
			b := make([]byte, chunk)
			for {
				if _, err := st.Write(b); err != nil {
					return
				}
			}
		})
	}
	for range 8 {
		writer('S', 2<<10) // urgent: data frames of at most 4 KiB
	}
	// Once the small writes fill the path, the limit has settled on it.
	// The waits are long for a starved machine: 8 writers of 2 KiB
	// frames under the race detector, at nice 19 under a load average of
	// 24, moved 1.6 MiB in 20 s. Starved for ever, as the bulk stream
	// was before, still fails.
	const starved = time.Minute
	if !pollUntil(starved, func() bool { return small.Load() >= 4<<20 }) {
		t.Fatalf("the small writers moved only %d bytes", small.Load())
	}
	writer('B', 256<<10)
	if !pollUntil(starved, func() bool { return bulk.Load() >= 1<<20 }) {
		t.Fatalf("bulk stream starved: %d bytes in %v beside small writes", bulk.Load(), starved)
	}
}

type countWriter struct{ n *atomic.Int64 }

func (w countWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return len(p), nil
}
