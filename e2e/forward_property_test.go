//go:build linux

package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
)

// upload is what the property target saw of one connection.
type upload struct {
	n   int64
	sum [32]byte
	err error // how its reading ended: nil is a clean end (FIN)
}

// propertyTarget echoes every connection while it hashes what it reads.
// A connection's first 8 bytes are its id: headers are closed when the id
// has arrived, and uploads gets what the connection read when it ended.
type propertyTarget struct {
	*testutil.Server
	mu      sync.Mutex
	headers map[uint64]chan struct{}
	uploads map[uint64]upload
}

func newPropertyTarget(t *testing.T) *propertyTarget {
	p := &propertyTarget{headers: map[uint64]chan struct{}{}, uploads: map[uint64]upload{}}
	p.Server = testutil.Serve(t, p.serve)
	return p
}

// header returns the channel closed when id's header has arrived.
func (p *propertyTarget) header(id uint64) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch, ok := p.headers[id]
	if !ok {
		ch = make(chan struct{})
		p.headers[id] = ch
	}
	return ch
}

func (p *propertyTarget) serve(c net.Conn) {
	var id [8]byte
	if _, err := io.ReadFull(c, id[:]); err != nil {
		return // not a test's connection: every client waits for its header
	}
	key := binary.BigEndian.Uint64(id[:])
	close(p.header(key))
	h := sha256.New()
	h.Write(id[:])
	var read countWriter
	// The target's one goroutine sees a reset as the error of whichever
	// call comes first, never as an EOF after a write took it.
	_, err := c.Write(id[:])
	if err == nil {
		_, err = io.Copy(c, io.TeeReader(c, io.MultiWriter(h, &read)))
	}
	if err == nil {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	u := upload{n: int64(read) + 8, err: err}
	h.Sum(u.sum[:0])
	p.mu.Lock()
	p.uploads[key] = u
	p.mu.Unlock()
}

// countWriter counts what it is given.
type countWriter int64

func (w *countWriter) Write(p []byte) (int, error) {
	*w += countWriter(len(p))
	return len(p), nil
}

func (p *propertyTarget) upload(id uint64) (upload, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.uploads[id]
	return u, ok
}

// TestForwardNoCutLooksWhole: many connections at once through `sandmux
// forward`, through the agent and with --no-agent, each uploading random
// bytes that the target echoes, each ending at random: cleanly (a
// half-close, then the echo read to its end) or by the local client's
// reset part-way. The target must see each clean upload whole with its
// end and each reset one as a prefix and a reset, never as a clean end;
// every clean connection's echo must arrive whole.
func TestForwardNoCutLooksWhole(t *testing.T) {
	t.Parallel()
	target := newPropertyTarget(t)
	srv := startServer(t, serverOpts{Allow: []string{target.Addr}})
	ctx := testContext(t, 3*time.Minute)
	const conns = 24
	for mi, mode := range []string{"agent", "no-agent"} {
		fwd, m := edForward(t, ctx, srv.URL, target.Addr, mode)
		var wg sync.WaitGroup
		for i := range conns {
			id := uint64(mi*conns + i)
			wg.Go(func() {
				if err := propertyConn(target, m[1], id); err != nil {
					t.Errorf("%s, connection %d: %v", mode, id, err)
				}
			})
		}
		wg.Wait()
		if code := fwd.stop(t); code != 0 {
			t.Errorf("%s: forward exited %d on SIGTERM; stderr:\n%s", mode, code, fwd.Stderr())
		}
	}
}

// propertyConn runs connection id against target through addr and checks
// what the target saw.
func propertyConn(target *propertyTarget, addr string, id uint64) error {
	rng := rand.New(rand.NewPCG(id, 0x5a4d))
	data := make([]byte, 9+rng.IntN(2<<20))
	binary.BigEndian.PutUint64(data, id)
	for i := 8; i < len(data); i++ {
		data[i] = byte(rng.Uint32())
	}
	reset := rng.IntN(2) == 0
	cutAt := 8 + rng.IntN(len(data)-8) // bytes written before a reset
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	echo := make(chan []byte, 1)
	echoErr := make(chan error, 1)
	go func() {
		b, err := io.ReadAll(c)
		echo <- b
		echoErr <- err
	}()
	if !reset {
		if _, err := c.Write(data); err != nil {
			return err
		}
		_ = c.(*net.TCPConn).CloseWrite()
		if b, err := <-echo, <-echoErr; err != nil || !bytes.Equal(b, data) {
			return fmt.Errorf("clean: echo of %d bytes came back as %d, then %v", len(data), len(b), err)
		}
	} else {
		if _, err := c.Write(data[:cutAt]); err != nil {
			return err
		}
		select {
		case <-target.header(id):
		case <-time.After(time.Minute):
			return errors.New("reset: the header never reached the target")
		}
		_ = c.(*net.TCPConn).SetLinger(0)
		_ = c.Close()
		<-echo
		<-echoErr
	}
	var u upload
	if !testutil.Poll(time.Minute, func() (ok bool) { u, ok = target.upload(id); return ok }) {
		return errors.New("the target's connection did not end")
	}
	switch {
	case !reset && (u.err != nil || u.n != int64(len(data)) || u.sum != sha256.Sum256(data)):
		return fmt.Errorf("clean: the target read %d of %d bytes (whole: %v), then %v; want all and its end",
			u.n, len(data), u.sum == sha256.Sum256(data), u.err)
	case reset && !errors.Is(u.err, syscall.ECONNRESET):
		return fmt.Errorf("reset after %d bytes: the target read %d, then %v; want a reset", cutAt, u.n, u.err)
	case reset && (u.n > int64(cutAt) || u.sum != sha256.Sum256(data[:u.n])):
		return fmt.Errorf("reset after %d bytes: the target read %d bytes that are not the upload's prefix", cutAt, u.n)
	}
	return nil
}
