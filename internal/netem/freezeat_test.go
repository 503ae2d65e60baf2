package netem

import (
	"bytes"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestFreezeAt checks that a mark of FreezeAt (both ways) or
// FreezeToTargetAt (to the target) stops the bytes at the mark, so the
// target never gets past it while frozen, and that Thaw delivers every
// byte, in order.
func TestFreezeAt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		arm   func(p *Proxy, at int64)
		fired func(p *Proxy) int64
	}{
		{"FreezeAt", (*Proxy).freezeAtOne, (*Proxy).FreezesAt},
		{"FreezeToTargetAt", (*Proxy).freezeToTargetAtOne, (*Proxy).FreezesToTargetAt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var arrived atomic.Int64
			received := make(chan []byte, 1)
			srv := startServer(t, func(c *net.TCPConn) {
				c.SetDeadline(time.Now().Add(ioTimeout))
				var b bytes.Buffer
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					b.Write(buf[:n])
					arrived.Add(int64(n))
					if err != nil {
						break
					}
				}
				received <- b.Bytes()
			})
			p := startProxy(t, Config{Target: srv.addr()})
			const mark = 1 << 20
			tc.arm(p, mark)
			c := dial(t, p.Addr())
			c.SetDeadline(time.Now().Add(ioTimeout))
			msg := randomBytes(7, 4<<20)
			sent := async(func() error {
				if _, err := c.Write(msg); err != nil {
					return err
				}
				return c.CloseWrite()
			})
			deadline := time.Now().Add(ioTimeout)
			for tc.fired(p) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("no freeze after %d bytes carried, mark %d", p.Carried(), mark)
				}
				time.Sleep(time.Millisecond)
			}
			if c := p.Carried(); c < mark {
				t.Errorf("frozen after %d bytes carried, before the mark at %d", c, mark)
			}
			if n := arrived.Load(); n > mark {
				t.Errorf("the target got %d bytes, past the mark at %d", n, mark)
			}
			p.Thaw()
			if err := <-sent; err != nil {
				t.Fatalf("write: %v", err)
			}
			select {
			case got := <-received:
				if !bytes.Equal(got, msg) {
					t.Fatalf("after thaw the target got %d bytes that differ from the %d sent", len(got), len(msg))
				}
			case <-time.After(ioTimeout):
				t.Fatal("the target's connection never ended")
			}
			if n := tc.fired(p); n != 1 {
				t.Fatalf("%d freezes, want 1", n)
			}
		})
	}
}

func (p *Proxy) freezeAtOne(at int64)         { p.FreezeAt(at) }
func (p *Proxy) freezeToTargetAtOne(at int64) { p.FreezeToTargetAt(at) }
