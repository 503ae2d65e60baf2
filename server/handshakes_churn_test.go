package server_test

import (
	"bufio"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
	"github.com/sandmux/sandmux/server"
)

// churn is one connection's way of using (or abusing) the server: some
// are evicted, answered 503 or closed unread on the way, which is the
// point; what each does after is ignored.
func churn(addr, url string, kind int) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	answer := func() {
		if resp, err := http.ReadResponse(br, nil); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	}
	const healthz = "GET /healthz HTTP/1.1\r\nHost: sandbox\r\n\r\n"
	switch kind {
	case 0: // connects, says nothing
	case 1: // half a request line, then gone
		_, _ = io.WriteString(c, "GET /hea")
	case 2: // keep-alive: two health checks, one after the other
		for range 2 {
			if _, err := io.WriteString(c, healthz); err != nil {
				return
			}
			answer()
		}
	case 3: // two pipelined
		_, _ = io.WriteString(c, healthz+healthz)
		answer()
		answer()
	case 4: // a v2 upgrade that holds its place a while without a hello
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: sandbox\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: "+mux.SubprotocolResumable+"\r\n\r\n")
		answer()
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, _ = c.Read(make([]byte, 1))
	case 5: // a raw upgrade, dropped at once
		_, _ = io.WriteString(c, upgradeRequest)
		answer()
	case 6: // a body announced, never sent
		_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: sandbox\r\nContent-Length: 10\r\n\r\n")
		answer()
	case 7: // reset halfway through its header
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: sand")
		_ = c.(*net.TCPConn).SetLinger(0)
	default: // a real client's session
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if s, err := client.Dial(ctx, clientConfig(url)); err == nil {
			_ = s.Close()
		}
	}
}

// Whatever connections do at the handshake limit (silent, half a line,
// keep-alive and pipelined health checks, upgrades that never say
// hello, raw upgrades, an announced body, resets, real sessions), on
// IPv4 and IPv6 loopback, once they have all gone every place is given
// back: none kept for ever (the limit would shrink until no client got
// in), none given back twice (it would grow past --max-handshakes).
func TestHandshakeLimitChurnGivesEveryPlaceBack(t *testing.T) {
	for _, network := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(network, func(t *testing.T) {
			ln, err := net.Listen("tcp", network)
			if err != nil {
				t.Skipf("no %s here: %v", network, err) // IPv6 loopback may be off in a container
			}
			ts := startServerOn(t, ln, testutil.EchoServer(t).Addr, func(c *server.Config) {
				c.MaxHandshakes = 4
				c.Mux.HeaderTimeout = 2 * time.Second
			})
			ts.srv.SetBusyAnswerLimit(100 * time.Millisecond)
			srv, addr, url := ts.srv, ln.Addr().String(), ts.url
			rng := rand.New(rand.NewPCG(1, 2))
			kinds := make(chan int)
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					for k := range kinds {
						churn(addr, url, k)
					}
				})
			}
			for range 400 {
				kinds <- rng.IntN(9)
			}
			close(kinds)
			wg.Wait()
			t.Logf("%+v", srv.Stats())
			// The churn must have met the limit, or it shows nothing.
			if st := srv.Stats(); st.RefusedHandshakes < 20 {
				t.Fatalf("no connection was refused or made way: the churn never reached the limit (%+v)", st)
			}
			testutil.WaitFor(t, hardWait, "every place given back", func() bool {
				p, b, n := srv.HandshakeCounts()
				return p == 0 && b == 0 && n == 0
			})
			ctx, cancel := context.WithTimeout(context.Background(), hardWait)
			defer cancel()
			s, err := client.Dial(ctx, clientConfig(url))
			if err != nil {
				t.Fatalf("a client after the churn: %v", err)
			}
			_ = s.Close()
		})
	}
}
