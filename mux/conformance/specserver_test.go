package conformance

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// specServer is a sandmux server written from the spec, to hold the real
// client to it: it answers an upgrade with one subprotocol (or none, raw
// mode), serves every stream as an echo after an OK reply naming the
// requested target, and records what the client sent.
type specServer struct {
	t    *testing.T
	pick string // "sandmux.v1", "sandmux.v2" or "" (raw)
	url  string
	hs   *httptest.Server
	wg   sync.WaitGroup

	mu       sync.Mutex
	changed  chan struct{}
	upgrades []http.Header
	hellos   [][]byte
	early    bool // DATA arrived behind the HELLO, before the WELCOME
	sess     *miniSession
	r        *resumable
	requests [][]byte
	ws       []*websocket.Conn
	closers  []func()
}

func startSpecServer(t *testing.T, pick string) *specServer {
	ss := &specServer{t: t, pick: pick, changed: make(chan struct{})}
	ss.hs = httptest.NewServer(http.HandlerFunc(ss.serve))
	ss.url = "ws" + strings.TrimPrefix(ss.hs.URL, "http")
	t.Cleanup(ss.close)
	return ss
}

func (ss *specServer) close() {
	ss.hs.CloseClientConnections()
	ss.hs.Close()
	ss.mu.Lock()
	closers := ss.closers
	ss.closers = nil
	for _, c := range ss.ws {
		c.CloseNow()
	}
	ss.mu.Unlock()
	for _, f := range closers {
		f()
	}
	ss.wg.Wait()
}

func (ss *specServer) note(f func()) {
	ss.mu.Lock()
	f()
	close(ss.changed)
	ss.changed = make(chan struct{})
	ss.mu.Unlock()
}

func (ss *specServer) serve(w http.ResponseWriter, req *http.Request) {
	ss.note(func() { ss.upgrades = append(ss.upgrades, req.Header.Clone()) })
	opts := &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled}
	if ss.pick != "" {
		opts.Subprotocols = []string{ss.pick}
	}
	c, err := websocket.Accept(w, req, opts)
	if err != nil {
		return
	}
	c.SetReadLimit(maxMessage)
	ss.note(func() { ss.ws = append(ss.ws, c) })
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	switch ss.pick {
	case "":
		for { // raw mode (§7): echo the bytes
			typ, m, err := c.Read(ctx)
			if err != nil || c.Write(ctx, typ, m) != nil {
				return
			}
		}
	case "sandmux.v1":
		ss.startMux(newServerSession(newWSStream(c)))
	case "sandmux.v2":
		ss.serveV2(ctx, c)
	}
}

func (ss *specServer) serveV2(ctx context.Context, c *websocket.Conn) {
	m, err := readMsg(ctx, c)
	if err != nil {
		return
	}
	ss.note(func() { ss.hellos = append(ss.hellos, m) })
	if len(m) != 57 || m[0] != msgHello {
		_ = c.Close(websocket.StatusProtocolError, "expected a sandmux hello")
		return
	}
	var id [16]byte
	var secret [32]byte
	copy(id[:], m[1:17])
	copy(secret[:], m[17:49])
	rc := uint64(m[49])<<56 | uint64(m[50])<<48 | uint64(m[51])<<40 | uint64(m[52])<<32 |
		uint64(m[53])<<24 | uint64(m[54])<<16 | uint64(m[55])<<8 | uint64(m[56])
	if id == ([16]byte{}) {
		w := welcome{Status: welcomeNew, GraceMS: 60000}
		_, _ = rand.Read(w.ID[:])
		_, _ = rand.Read(w.Secret[:])
		r := serverResumable(c, w)
		// Give the client a moment to send DATA behind its HELLO, as
		// §9.2 says sandmux's client does, before answering.
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		early := r.waitFor(wctx, func() bool { return r.received > 0 }) == nil
		wcancel()
		ss.note(func() { ss.early, ss.r = early, r })
		if err := r.attach(ctx, c, w, 0, false); err != nil {
			_ = r.Close()
			return
		}
		ss.startMux(newServerSession(r))
		return
	}
	ss.mu.Lock()
	r := ss.r
	ss.mu.Unlock()
	if r == nil || r.w.ID != id || r.w.Secret != secret {
		_ = c.Write(ctx, websocket.MessageBinary, welcome{Status: welcomeUnknown}.bytes())
		_ = c.Close(websocket.StatusNormalClosure, "")
		return
	}
	if err := r.attach(ctx, c, welcome{Status: welcomeResumed, ID: id, GraceMS: 60000}, rc, true); err != nil {
		ss.t.Errorf("resume: %v", err)
	}
}

// cut drops the v2 session's WebSocket without a close handshake.
func (ss *specServer) cut() {
	ss.mu.Lock()
	r := ss.r
	ss.mu.Unlock()
	r.cut()
}

// startMux serves the streams of a yamux session as echoes.
func (ss *specServer) startMux(s *miniSession) {
	ss.note(func() {
		ss.sess = s
		ss.closers = append(ss.closers, func() { _ = s.Close() })
	})
	ss.wg.Add(1)
	go func() {
		defer ss.wg.Done()
		for {
			select {
			case st := <-s.accept:
				ss.wg.Add(1)
				go func() {
					defer ss.wg.Done()
					ss.serveStream(st)
				}()
			case <-s.done:
				return
			}
		}
	}()
}

func (ss *specServer) serveStream(st *miniStream) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	req, err := readReply(streamReader{ctx, st}) // the same layout (§5)
	if err != nil {
		return
	}
	ss.note(func() { ss.requests = append(ss.requests, req.Raw) })
	target := req.Target
	if target == "" {
		target = "127.0.0.1:22"
	}
	if st.write(ctx, header(1, 0, tlv{tagTarget, []byte(target)})) != nil {
		return
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := st.read(ctx, buf)
		if n > 0 && st.write(ctx, buf[:n]) != nil {
			return
		}
		if err == io.EOF {
			_ = st.closeWrite()
			return
		}
		if err != nil {
			return
		}
	}
}
