package mux_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
)

// fastConfig is the default tuning with timeouts short enough for tests but
// long enough that a loaded race-detector run never trips them by accident.
func fastConfig() mux.Config {
	c := mux.DefaultConfig()
	c.KeepAliveInterval = time.Second
	c.DeadAfter = 15 * time.Second
	// A frame's wait for the transport included its turn behind the
	// frames queued before it: 50 bulk echo streams on one CPU shared
	// with ten busy processes, under the race detector, queued a frame
	// past 30 s, and the session ended as its transport's write timed
	// out (TestSessionConcurrentEcho). The patched yamux now counts only
	// time in which the connection took no write (writeprogress.go);
	// the margin stays for a send loop starved of CPU. The tests of the
	// timeout set their own.
	c.WriteTimeout = 2 * waitTimeout
	c.StreamOpenTimeout = 30 * time.Second
	// The close timeout counts the peer's silence on one stream, and the
	// streams of a session take turns on it a frame (up to MaxFrame,
	// 256 KiB) each: 50 bulk echo streams on a loaded CI machine under
	// the race detector left one stream unheard from for over 5 s, which
	// reset it (TestSessionConcurrentEcho). The tests of the timeout set
	// their own.
	c.StreamCloseTimeout = waitTimeout
	c.HeaderTimeout = 30 * time.Second
	return c
}

type pairOptions struct {
	client, server         mux.Config
	wrapClient, wrapServer func(net.Conn) net.Conn
}

// newPair connects a client and a server session over a real WebSocket on
// loopback, negotiated with the sandmux subprotocol, exactly as the client
// and server packages do. Both sessions are closed when the test ends.
func newPair(t *testing.T, o pairOptions) (cli, srv *mux.Session) {
	t.Helper()
	if o.client == (mux.Config{}) {
		o.client = fastConfig()
	}
	if o.server == (mux.Config{}) {
		o.server = fastConfig()
	}
	wrap := func(f func(net.Conn) net.Conn, c net.Conn) net.Conn {
		if f == nil {
			return c
		}
		return f(c)
	}
	// The connections outlive the HTTP request and the dial, so their
	// lifetime is this context, never r.Context() or a dial timeout.
	life, cancel := context.WithCancel(context.Background())
	type result struct {
		s   *mux.Session
		err error
	}
	accepted := make(chan result, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			Subprotocols:    []string{mux.Subprotocol},
			CompressionMode: websocket.CompressionDisabled,
		})
		if err != nil {
			accepted <- result{err: err}
			return
		}
		if ws.Subprotocol() != mux.Subprotocol {
			accepted <- result{err: fmt.Errorf("server negotiated %q", ws.Subprotocol())}
			_ = ws.CloseNow()
			return
		}
		s, err := mux.Server(wrap(o.wrapServer, mux.NetConn(life, ws)), o.server, nil)
		accepted <- result{s, err}
	}))
	dctx, dcancel := context.WithTimeout(context.Background(), waitTimeout)
	defer dcancel()
	ws, _, err := websocket.Dial(dctx, "ws"+strings.TrimPrefix(ts.URL, "http"), &websocket.DialOptions{
		Subprotocols:    []string{mux.Subprotocol},
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		cancel()
		ts.Close()
		t.Fatalf("dial: %v", err)
	}
	if ws.Subprotocol() != mux.Subprotocol {
		t.Fatalf("client negotiated %q", ws.Subprotocol())
	}
	cli, err = mux.Client(wrap(o.wrapClient, mux.NetConn(life, ws)), o.client, nil)
	if err != nil {
		t.Fatalf("client session: %v", err)
	}
	r := <-accepted
	if r.err != nil {
		t.Fatalf("server session: %v", r.err)
	}
	srv = r.s
	t.Cleanup(func() {
		_ = cli.Close()
		_ = srv.Close()
		cancel()
		ts.Close()
	})
	return cli, srv
}

// serve runs handle for every stream the session accepts until it ends;
// the test's cleanup waits for every handler.
func serve(t *testing.T, s *mux.Session, handle func(*mux.Stream)) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			st, err := s.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer st.Close()
				handle(st)
			}()
		}
	}()
	t.Cleanup(func() { _ = s.Close(); wg.Wait() })
}

// echo answers a stream's header with OK and echoes its bytes until EOF,
// then half-closes.
func echo(srv *mux.Session) func(*mux.Stream) {
	return func(st *mux.Stream) {
		req, err := srv.ReadRequest(st)
		if err != nil {
			return
		}
		if err := srv.Reply(st, mux.Reply{Status: mux.StatusOK, Target: req.Target}); err != nil {
			return
		}
		if _, err := io.Copy(st, st); err != nil {
			return
		}
		_ = st.CloseWrite()
	}
}

// echoCheck writes data on st, half-closes, reads everything back and
// compares checksums.
func echoCheck(st *mux.Stream, data []byte) error {
	werr := make(chan error, 1)
	go func() {
		_, err := st.Write(data)
		if err == nil {
			err = st.CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	n, err := io.Copy(h, st)
	if err != nil {
		return fmt.Errorf("stream %d: read echo after %d bytes: %w", st.StreamID(), n, err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("stream %d: write: %w", st.StreamID(), err)
	}
	if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
		return fmt.Errorf("stream %d: echoed %d bytes, checksum differs from the %d sent", st.StreamID(), n, len(data))
	}
	return nil
}

// echoParallel echoes size random bytes on each of streams streams of
// cli at once, through an echo server, and reports every failure.
func echoParallel(t *testing.T, cli *mux.Session, streams, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	errs := make(chan error, streams)
	var wg sync.WaitGroup
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := cli.Open(ctx, mux.Request{Target: fmt.Sprintf("echo:%d", i+1)})
			if err != nil {
				errs <- fmt.Errorf("open %d: %w", i, err)
				return
			}
			defer st.Close()
			errs <- echoCheck(st, randBytes(t, size))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestSessionConcurrentEcho(t *testing.T) {
	const streams, size = 50, 1 << 20
	cli, srv := newPair(t, pairOptions{})
	serve(t, srv, echo(srv))
	echoParallel(t, cli, streams, size)
	if st := cli.Stats(); st.BytesOut < streams*size || st.BytesIn < streams*size {
		t.Errorf("client stats %+v: want at least %d bytes each way", st, streams*size)
	}
}

// frameLog records what yamux writes to its transport and parses it back
// into frames.
type frameLog struct {
	net.Conn
	mu  sync.Mutex
	out []byte
}

func (f *frameLog) Write(p []byte) (int, error) {
	f.mu.Lock()
	f.out = append(f.out, p...)
	f.mu.Unlock()
	return f.Conn.Write(p)
}

// each parses the log into frames and calls fn with each one's type,
// stream id and length field (for a data frame, its body's length).
func (f *frameLog) each(t *testing.T, fn func(typ byte, id, n uint32)) {
	t.Helper()
	f.mu.Lock()
	b := bytes.Clone(f.out)
	f.mu.Unlock()
	for len(b) >= 12 {
		if b[0] != 0 {
			t.Fatalf("yamux frame with version %d", b[0])
		}
		typ, sid, n := b[1], binary.BigEndian.Uint32(b[4:8]), binary.BigEndian.Uint32(b[8:12])
		b = b[12:]
		if typ == 0 {
			if int(n) > len(b) {
				t.Fatalf("data frame of %d bytes cut short at %d", n, len(b))
			}
			b = b[n:]
		}
		fn(typ, sid, n)
	}
	if len(b) != 0 {
		t.Fatalf("%d bytes left after the last whole frame", len(b))
	}
}

// dataFrames returns the body lengths of the data frames sent on stream id.
func (f *frameLog) dataFrames(t *testing.T, id uint32) []int {
	t.Helper()
	var lens []int
	f.each(t, func(typ byte, sid, n uint32) {
		if typ == 0 && sid == id && n > 0 {
			lens = append(lens, int(n))
		}
	})
	return lens
}

// openEcho opens a stream to an echo handler on a new pair, closed when
// the test ends.
func openEcho(t *testing.T, o pairOptions) (cli, srv *mux.Session, st *mux.Stream) {
	t.Helper()
	cli, srv = newPair(t, o)
	serve(t, srv, echo(srv))
	return cli, srv, openStream(t, cli)
}

// openStream opens a stream on cli, closed when the test ends.
func openStream(t *testing.T, cli *mux.Session) *mux.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	st, err := cli.Open(ctx, mux.Request{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// loggedEchoStream is openEcho with a client running cfg, logging what
// each side's yamux writes.
func loggedEchoStream(t *testing.T, cfg mux.Config) (st *mux.Stream, cliLog, srvLog *frameLog) {
	t.Helper()
	_, _, st = openEcho(t, pairOptions{
		client:     cfg,
		wrapClient: func(c net.Conn) net.Conn { cliLog = &frameLog{Conn: c}; return cliLog },
		wrapServer: func(c net.Conn) net.Conn { srvLog = &frameLog{Conn: c}; return srvLog },
	})
	return st, cliLog, srvLog
}

// TestStreamWriteFrameCap: one large Write goes out as frames of at most
// MaxFrame bytes, so small frames of other streams can pass between them.
func TestStreamWriteFrameCap(t *testing.T) {
	tests := []struct {
		maxFrame, write int
	}{
		{1024, 100 << 10},
		{4096, 256 << 10},
		{32 << 10, 1 << 20},
		{32 << 10, 100}, // a small write is one small frame
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("cap %d write %d", tt.maxFrame, tt.write), func(t *testing.T) {
			cfg := fastConfig()
			cfg.MaxFrame = tt.maxFrame
			st, log, _ := loggedEchoStream(t, cfg)
			// echoCheck returns after the peer's FIN, which follows every
			// byte this side sent, so the log is complete.
			if err := echoCheck(st, randBytes(t, tt.write)); err != nil {
				t.Fatal(err)
			}
			lens := log.dataFrames(t, st.StreamID())
			hdr := len(mustMarshal(t, mux.Request{}))
			total := 0
			for _, n := range lens {
				if n > tt.maxFrame {
					t.Fatalf("data frame of %d bytes, cap is %d", n, tt.maxFrame)
				}
				total += n
			}
			if total != hdr+tt.write {
				t.Fatalf("data frames carried %d bytes, want %d", total, hdr+tt.write)
			}
			if want := (tt.write + tt.maxFrame - 1) / tt.maxFrame; len(lens)-1 < want {
				t.Fatalf("%d data frames for a %d-byte write, want at least %d", len(lens)-1, tt.write, want)
			}
		})
	}
}

// freezeConn stops delivering received bytes while frozen, like a network
// path that died without a FIN or RST.
type freezeConn struct {
	net.Conn
	mu       sync.Mutex
	thaw     chan struct{} // non-nil while frozen
	closed   chan struct{}
	closeOne sync.Once
}

func newFreezeConn(c net.Conn) *freezeConn {
	return &freezeConn{Conn: c, closed: make(chan struct{})}
}

func (f *freezeConn) freeze() {
	f.mu.Lock()
	if f.thaw == nil {
		f.thaw = make(chan struct{})
	}
	f.mu.Unlock()
}

func (f *freezeConn) release() {
	f.mu.Lock()
	if f.thaw != nil {
		close(f.thaw)
		f.thaw = nil
	}
	f.mu.Unlock()
}

func (f *freezeConn) Read(p []byte) (int, error) {
	f.mu.Lock()
	thaw := f.thaw
	f.mu.Unlock()
	if thaw != nil {
		select {
		case <-thaw:
		case <-f.closed:
			return 0, net.ErrClosed
		}
	}
	return f.Conn.Read(p)
}

func (f *freezeConn) Close() error {
	f.closeOne.Do(func() { close(f.closed) })
	return f.Conn.Close()
}

// TestSilenceWatchdog: when the transport stops delivering bytes, the
// session closes itself, says it died, and its streams fail with an error
// that is not a clean EOF.
func TestSilenceWatchdog(t *testing.T) {
	cfg := fastConfig()
	cfg.KeepAliveInterval = 100 * time.Millisecond
	cfg.DeadAfter = time.Second // 10 missed pings: no false death while setting up
	var fc *freezeConn
	cli, _, st := openEcho(t, pairOptions{client: cfg, wrapClient: func(c net.Conn) net.Conn {
		fc = newFreezeConn(c)
		return fc
	}})
	t.Cleanup(fc.release)
	send(t, st, st, []byte("alive"))

	blocked := make(chan error, 1)
	go func() {
		_, err := st.Read(make([]byte, 1))
		blocked <- err
	}()
	start := time.Now()
	fc.freeze()
	select {
	case <-cli.CloseChan():
	case <-time.After(waitTimeout):
		t.Fatal("session did not close after its transport went silent")
	}
	t.Logf("silent session closed after %v", time.Since(start).Round(time.Millisecond))
	if !cli.Dead() {
		t.Fatal("Dead() = false after the watchdog closed the session")
	}
	if !cli.IsClosed() {
		t.Fatal("IsClosed() = false after the watchdog closed the session")
	}
	checkCut := func(what string, err error) {
		t.Helper()
		if err == nil || err == io.EOF {
			t.Fatalf("%s: error %v, want a session error, never a clean EOF", what, err)
		}
		if !errors.Is(err, mux.ErrSessionDead) {
			t.Fatalf("%s: error %v, want ErrSessionDead", what, err)
		}
	}
	select {
	case err := <-blocked:
		checkCut("blocked Read", err)
	case <-time.After(waitTimeout):
		t.Fatal("a Read blocked on the stream did not return")
	}
	_, err := st.Read(make([]byte, 1))
	checkCut("Read after death", err)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err = cli.Open(ctx, mux.Request{})
	checkCut("Open after death", err)
}

// TestIdleSessionStaysAlive: pings keep an idle session above the
// watchdog, and their round trips are recorded.
func TestPingAtStart(t *testing.T) {
	// With the default 15 s keepalive: only the ping at start (which
	// windows need to grow) can give an RTT within a few seconds.
	cli, srv := newPair(t, pairOptions{client: mux.DefaultConfig(), server: mux.DefaultConfig()})
	serve(t, srv, echo(srv))
	if !testutil.Poll(3*time.Second, func() bool { return cli.Stats().LastRTT != 0 && srv.Stats().LastRTT != 0 }) {
		t.Fatalf("no round trip within 3s of the start: client %v, server %v", cli.Stats().LastRTT, srv.Stats().LastRTT)
	}
}

func TestIdleSessionStaysAlive(t *testing.T) {
	cfg := fastConfig()
	cfg.KeepAliveInterval = 50 * time.Millisecond
	cfg.DeadAfter = 1500 * time.Millisecond
	cli, srv := newPair(t, pairOptions{client: cfg, server: cfg})
	serve(t, srv, echo(srv))
	rtts := testutil.Poll(waitTimeout, func() bool {
		select {
		case <-cli.CloseChan():
			t.Fatal("idle client session closed")
		case <-srv.CloseChan():
			t.Fatal("idle server session closed")
		default:
		}
		return cli.Stats().LastRTT != 0 && srv.Stats().LastRTT != 0
	})
	if !rtts {
		t.Fatalf("keepalive recorded no round trip: client %v, server %v", cli.Stats().LastRTT, srv.Stats().LastRTT)
	}
	// Stay idle for twice DeadAfter: a session kept up only by its pings
	// must not be declared dead.
	select {
	case <-cli.CloseChan():
		t.Fatal("idle client session closed")
	case <-srv.CloseChan():
		t.Fatal("idle server session closed")
	case <-time.After(2 * cfg.DeadAfter):
	}
	if cli.Dead() || srv.Dead() {
		t.Fatal("an idle session was declared dead")
	}
}

// TestStreamCutBySessionClose: a stream whose session ends under it reads
// an error wrapping ErrSessionEnded, never io.EOF, on either end.
func TestStreamCutBySessionClose(t *testing.T) {
	tests := []struct {
		name  string
		close func(cli, srv *mux.Session) error
	}{
		{"local session closed", func(cli, _ *mux.Session) error { return cli.Close() }},
		{"remote session closed", func(_, srv *mux.Session) error { return srv.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli, srv, st := openEcho(t, pairOptions{})
			send(t, st, st, []byte("hello"))
			blocked := make(chan error, 1)
			go func() {
				_, err := st.Read(make([]byte, 1))
				blocked <- err
			}()
			if err := tt.close(cli, srv); err != nil {
				t.Fatalf("close: %v", err)
			}
			select {
			case err := <-blocked:
				if err == io.EOF || !errors.Is(err, mux.ErrSessionEnded) {
					t.Fatalf("Read = %v, want an error wrapping ErrSessionEnded", err)
				}
			case <-time.After(waitTimeout):
				t.Fatal("Read did not return after the session closed")
			}
			if cli.Dead() {
				t.Fatal("Dead() = true for a session that was closed, not silent")
			}
			// A write after the end is told the same, not yamux's bare
			// "session shutdown" or "stream closed".
			if _, err := st.Write([]byte("more")); !errors.Is(err, mux.ErrSessionEnded) {
				t.Fatalf("Write = %v, want an error wrapping ErrSessionEnded", err)
			}
		})
	}
}

// TestStreamCleanEOF: a stream the peer half-closes reads io.EOF, and the
// other direction goes on.
func TestStreamCleanEOF(t *testing.T) {
	cli, srv := newPair(t, pairOptions{})
	got := make(chan []byte, 1)
	serve(t, srv, func(st *mux.Stream) {
		if _, err := srv.ReadRequest(st); err != nil {
			return
		}
		if err := srv.Reply(st, mux.Reply{}); err != nil {
			return
		}
		_, _ = st.Write([]byte("bye"))
		_ = st.CloseWrite()
		b, _ := io.ReadAll(st)
		got <- b
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	st, err := cli.Open(ctx, mux.Request{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer st.Close()
	b, err := io.ReadAll(st)
	if err != nil || string(b) != "bye" {
		t.Fatalf("ReadAll = %q, %v; want \"bye\", nil (a clean EOF)", b, err)
	}
	if _, err := st.Write([]byte("still here")); err != nil {
		t.Fatalf("write after the peer's FIN: %v", err)
	}
	_ = st.CloseWrite()
	select {
	case b := <-got:
		if string(b) != "still here" {
			t.Fatalf("peer read %q after its own FIN", b)
		}
	case <-ctx.Done():
		t.Fatal("peer never read the data")
	}
}

// TestOpenErrors: every way opening a stream can fail, with the error the
// caller can test for.
func TestOpenErrors(t *testing.T) {
	discard := func(st *mux.Stream) { _, _ = io.Copy(io.Discard, st) }
	tests := []struct {
		name    string
		handle  func(srv *mux.Session) func(*mux.Stream)
		ctx     func() (context.Context, context.CancelFunc)
		target  string        // request target, if not the default
		header  time.Duration // client HeaderTimeout, if not the default
		check   func(error) bool
		wantErr string // describes check for the failure message
	}{
		{
			name:   "refused by the server",
			handle: replyWith(mux.Reply{Status: mux.StatusNotAllowed, Target: "10.0.0.1:5432"}),
			check: func(err error) bool {
				var se *mux.StreamError
				return errors.As(err, &se) && se.Status == mux.StatusNotAllowed &&
					err.Error() == "server refused target 10.0.0.1:5432: not allowed (add --allow 10.0.0.1:5432 to `sandmux server` in the sandbox)"
			},
			wantErr: "the server's *StreamError",
		},
		{
			name: "reply of an unknown version",
			handle: func(*mux.Session) func(*mux.Stream) {
				return func(st *mux.Stream) { _, _ = st.Write([]byte{9, 0, 0, 0}); discard(st) }
			},
			check:   func(err error) bool { return errors.Is(err, mux.ErrHeaderVersion) },
			wantErr: "ErrHeaderVersion",
		},
		{
			name:   "no reply within the context",
			handle: func(*mux.Session) func(*mux.Stream) { return discard },
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 100*time.Millisecond)
			},
			check:   func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
			wantErr: "context.DeadlineExceeded",
		},
		{
			name:   "no reply within HeaderTimeout",
			handle: func(*mux.Session) func(*mux.Stream) { return discard },
			header: 100 * time.Millisecond,
			check: func(err error) bool {
				var ne net.Error
				return errors.As(err, &ne) && ne.Timeout()
			},
			wantErr: "a net.Error timeout",
		},
		{
			name:   "context already cancelled",
			handle: func(*mux.Session) func(*mux.Stream) { return discard },
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			check:   func(err error) bool { return errors.Is(err, context.Canceled) },
			wantErr: "context.Canceled",
		},
		{
			name:    "request too large",
			handle:  func(*mux.Session) func(*mux.Stream) { return discard },
			target:  strings.Repeat("x", mux.MaxHeaderSize),
			check:   func(err error) bool { return errors.Is(err, mux.ErrHeaderTooLarge) },
			wantErr: "ErrHeaderTooLarge",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fastConfig()
			if tt.header > 0 {
				cfg.HeaderTimeout = tt.header
			}
			cli, srv := newPair(t, pairOptions{client: cfg})
			serve(t, srv, tt.handle(srv))
			newCtx := tt.ctx
			if newCtx == nil {
				newCtx = func() (context.Context, context.CancelFunc) {
					return context.WithTimeout(context.Background(), waitTimeout)
				}
			}
			ctx, cancel := newCtx()
			defer cancel()
			req := mux.Request{Target: "10.0.0.1:5432"}
			if tt.target != "" {
				req.Target = tt.target
			}
			st, err := cli.Open(ctx, req)
			if err == nil {
				_ = st.Close()
				t.Fatalf("Open succeeded, want %s", tt.wantErr)
			}
			if !tt.check(err) {
				t.Fatalf("Open error %q (%T), want %s", err, err, tt.wantErr)
			}
			// A refused stream leaves the session usable.
			if cli.IsClosed() {
				t.Fatal("a failed Open closed the session")
			}
		})
	}
}

func replyWith(rep mux.Reply) func(srv *mux.Session) func(*mux.Stream) {
	return func(srv *mux.Session) func(*mux.Stream) {
		return func(st *mux.Stream) {
			if _, err := srv.ReadRequest(st); err != nil {
				return
			}
			_ = srv.Reply(st, rep)
		}
	}
}

// TestReadRequestDeadline: a peer that opens a stream and sends no header
// cannot hold it past HeaderTimeout, and the deadline does not outlive the
// header read.
func TestReadRequestDeadline(t *testing.T) {
	cfg := fastConfig()
	cfg.HeaderTimeout = 100 * time.Millisecond
	cli, srv := newPair(t, pairOptions{server: cfg})
	result := make(chan error, 1)
	timedOut := make(chan struct{})
	serve(t, srv, func(st *mux.Stream) {
		if _, err := srv.ReadRequest(st); err != nil {
			result <- fmt.Errorf("first header: %w", err)
			return
		}
		if err := srv.Reply(st, mux.Reply{}); err != nil {
			result <- err
			return
		}
		// The client sends nothing more: reading a second header times out.
		_, err := srv.ReadRequest(st)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			result <- fmt.Errorf("second header: %v, want a timeout", err)
			return
		}
		close(timedOut)
		// And then the stream reads normally, without a deadline.
		b := make([]byte, 5)
		if _, err := io.ReadFull(st, b); err != nil || string(b) != "after" {
			result <- fmt.Errorf("read after the timeout: %q, %v", b, err)
			return
		}
		result <- nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	st, err := cli.Open(ctx, mux.Request{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer st.Close()
	// Write only once the server's header read has timed out.
	go func() {
		select {
		case <-timedOut:
			_, _ = st.Write([]byte("after"))
		case <-ctx.Done():
		}
	}()
	select {
	case err := <-result:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("server handler did not finish")
	}
}

func TestSessionStats(t *testing.T) {
	cli, srv := newPair(t, pairOptions{})
	serve(t, srv, echo(srv))
	if st := cli.Stats(); st.Streams != 0 {
		t.Fatalf("fresh session stats %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	before := cli.Stats()
	st, err := cli.Open(ctx, mux.Request{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if n := cli.Stats().Streams; n != 1 || cli.NumStreams() != 1 {
		t.Fatalf("Stats().Streams = %d, NumStreams() = %d with one stream open", n, cli.NumStreams())
	}
	const size = 300 << 10
	if err := echoCheck(st, randBytes(t, size)); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	after := cli.Stats()
	if after.BytesOut-before.BytesOut < size || after.BytesIn-before.BytesIn < size {
		t.Fatalf("stats moved %d out, %d in; want at least %d each", after.BytesOut-before.BytesOut, after.BytesIn-before.BytesIn, size)
	}
	if s := srv.Stats(); s.BytesIn < size || s.BytesOut < size {
		t.Fatalf("server stats %+v; want at least %d each way", s, size)
	}
	rtt, err := cli.Ping()
	if err != nil || rtt <= 0 {
		t.Fatalf("Ping = %v, %v", rtt, err)
	}
	if got := cli.Stats().LastRTT; got <= 0 {
		t.Fatalf("LastRTT = %v after Ping returned %v", got, rtt)
	}
	// Both ends closed their halves: the stream leaves the count.
	gone := testutil.Poll(waitTimeout, func() bool {
		select {
		case <-cli.CloseChan():
			t.Fatal("session closed")
		default:
		}
		return cli.Stats().Streams == 0
	})
	if !gone {
		t.Fatalf("Stats().Streams = %d after the stream closed", cli.Stats().Streams)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*mux.Config)
	}{
		{"window below yamux minimum", func(c *mux.Config) { c.StreamWindow = 256<<10 - 1 }},
		{"max window below the start", func(c *mux.Config) { c.MaxStreamWindow = c.StreamWindow - 1 }},
		{"spare window above the max", func(c *mux.Config) { c.SpareStreamWindow = c.MaxStreamWindow + 1 }},
		{"session window below one stream's", func(c *mux.Config) { c.SessionWindow = uint64(c.MaxStreamWindow) - 1 }},
		{"tiny max frame", func(c *mux.Config) { c.MaxFrame = 1023 }},
		{"zero max frame", func(c *mux.Config) { c.MaxFrame = 0 }},
		{"zero keepalive", func(c *mux.Config) { c.KeepAliveInterval = 0 }},
		{"negative keepalive", func(c *mux.Config) { c.KeepAliveInterval = -time.Second }},
		{"keepalive whose 1.5x overflows", func(c *mux.Config) { c.KeepAliveInterval = 1000000 * time.Hour }},
		{"negative dead-after", func(c *mux.Config) { c.DeadAfter = -1 }},
		{"zero write timeout", func(c *mux.Config) { c.WriteTimeout = 0 }},
		{"zero header timeout", func(c *mux.Config) { c.HeaderTimeout = 0 }},
		{"zero stream open timeout", func(c *mux.Config) { c.StreamOpenTimeout = 0 }},
		{"negative stream close timeout", func(c *mux.Config) { c.StreamCloseTimeout = -1 }},
		{"zero accept backlog", func(c *mux.Config) { c.AcceptBacklog = 0 }},
	}
	if err := mux.DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mux.DefaultConfig()
			tt.mod(&c)
			if err := c.Validate(); !errors.Is(err, mux.ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
			// Sessions refuse it before starting anything.
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			if s, err := mux.Client(a, c, nil); !errors.Is(err, mux.ErrInvalidConfig) {
				if s != nil {
					_ = s.Close()
				}
				t.Fatalf("Client() = %v, want ErrInvalidConfig", err)
			}
			if s, err := mux.Server(b, c, nil); !errors.Is(err, mux.ErrInvalidConfig) {
				if s != nil {
					_ = s.Close()
				}
				t.Fatalf("Server() = %v, want ErrInvalidConfig", err)
			}
		})
	}
	valid := []struct {
		name string
		mod  func(*mux.Config)
	}{
		{"zero dead-after means default", func(c *mux.Config) { c.DeadAfter = 0 }},
		{"zero stream close timeout disables it", func(c *mux.Config) { c.StreamCloseTimeout = 0 }},
		{"minimums", func(c *mux.Config) { c.StreamWindow = 256 << 10; c.MaxFrame = 1024; c.AcceptBacklog = 1 }},
	}
	for _, tt := range valid {
		c := mux.DefaultConfig()
		tt.mod(&c)
		if err := c.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v, want nil", tt.name, err)
		}
	}
}

// TestSubprotocol pins the negotiated names.
func TestSubprotocol(t *testing.T) {
	if mux.Subprotocol != "sandmux.v1" {
		t.Fatalf("Subprotocol = %q", mux.Subprotocol)
	}
	if !slices.Contains(mux.SupportedSubprotocols, mux.Subprotocol) {
		t.Fatalf("SupportedSubprotocols = %q, want it to include %q", mux.SupportedSubprotocols, mux.Subprotocol)
	}
	for _, p := range mux.SupportedSubprotocols {
		if !mux.IsSandmuxSubprotocol(p) {
			t.Fatalf("supported subprotocol %q is not a sandmux one", p)
		}
	}
	tests := []struct {
		p    string
		want bool
	}{
		{"sandmux.v1", true},
		{"sandmux.v9", true},
		{"sandmux.", true},
		{"sandmux", false},
		{"binary", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := mux.IsSandmuxSubprotocol(tt.p); got != tt.want {
			t.Errorf("IsSandmuxSubprotocol(%q) = %v, want %v", tt.p, got, tt.want)
		}
	}
}
