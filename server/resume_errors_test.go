package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/netem"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
	"github.com/sandmux/sandmux/server"
)

// swapHandler lets a test replace the server behind a URL, as a restart
// does: same address, no state. While down is set it answers 503, as an
// edge does for a sandbox it cannot reach, or downStatus if set, as
// whatever else may answer for the server while a network is switched.
type swapHandler struct {
	h          atomic.Pointer[server.Server]
	down       atomic.Bool
	downStatus atomic.Int32
}

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.down.Load() {
		switch code := int(s.downStatus.Load()); code {
		case 0:
			http.Error(w, "sandbox unavailable", http.StatusServiceUnavailable)
		case http.StatusFound:
			http.Redirect(w, r, "http://127.0.0.1:1/portal", code)
		default:
			http.Error(w, http.StatusText(code), code)
		}
		return
	}
	s.h.Load().ServeHTTP(w, r)
}

func fastServer(t *testing.T, target string, grace time.Duration, logs io.Writer) *server.Server {
	t.Helper()
	return fastServerWith(t, target, grace, logs, nil)
}

// fastServerWith is fastServer with the configuration changed by edit
// first, if not nil.
func fastServerWith(t *testing.T, target string, grace time.Duration, logs io.Writer, edit func(*server.Config)) *server.Server {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Target = target
	cfg.ResumeGrace = grace
	cfg.Mux.KeepAliveInterval = 200 * time.Millisecond
	if logs != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func fastClient(url string) client.Config {
	cfg := client.DefaultConfig()
	cfg.URL = url
	cfg.DialTimeout = 2 * time.Second
	cfg.Mux.KeepAliveInterval = 200 * time.Millisecond
	cfg.Backoff = client.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond, StableAfter: time.Second}
	return cfg
}

// throughFault serves h over HTTP behind a fault proxy and dials a fast
// client session through the proxy.
func throughFault(t *testing.T, h http.Handler) (*netem.Proxy, *client.Session) {
	t.Helper()
	return throughFaultWith(t, h, nil)
}

// throughFaultWith is throughFault with the client's configuration
// changed by edit first, if not nil.
func throughFaultWith(t *testing.T, h http.Handler, edit func(*client.Config)) (*netem.Proxy, *client.Session) {
	t.Helper()
	hs := httptest.NewServer(h)
	fault, err := netem.Start(netem.Config{Target: hs.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := fastClient("ws://" + fault.Addr())
	if edit != nil {
		edit(&cfg)
	}
	sess, err := client.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sess.Close()
		_ = fault.Close()
		hs.CloseClientConnections()
		hs.Close()
	})
	// Dial does not wait for the WELCOME (spec §9.2), and a WebSocket
	// lost before it ends the session by design (client.ErrNoWelcome,
	// client/welcome_test.go). The tests here cut an accepted session:
	// on a loaded CI machine a first cut 20 ms in once beat the WELCOME.
	testutil.WaitFor(t, 10*time.Second, "the server's WELCOME", func() bool { return !sess.Resumable() || sess.Welcomed() })
	return fault, sess
}

// liveStream opens a stream to the echo target and proves it works.
func liveStream(t *testing.T, sess *client.Session) io.ReadWriteCloser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sess.OpenStream(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	echo(t, c, "before")
	return c
}

func echo(t *testing.T, c io.ReadWriter, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read echo of %q: %v", msg, err)
	}
	if string(got) != msg {
		t.Fatalf("echo %q, want %q", got, msg)
	}
}

// readErr waits for the stream to end and returns how.
func readErr(t *testing.T, c io.Reader) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, c)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("stream did not end")
		return nil
	}
}

func TestResumeAfterFreeze(t *testing.T) {
	// A path that silently stops (no RST) is detected by the keepalive
	// watchdog within 2x the interval, and the session resumes.
	target := testutil.EchoServer(t).Addr
	srv := fastServer(t, target, 30*time.Second, nil)
	fault, sess := throughFault(t, srv)
	c := liveStream(t, sess)

	fault.Freeze()
	if !testutil.Poll(3*200*time.Millisecond*2, sess.Resuming) {
		t.Fatal("a frozen path was not detected within 2x the keepalive interval")
	}
	fault.Thaw()
	echo(t, c, "after the freeze")
	if st := sess.Mux().Stats(); st.Resumes < 1 {
		t.Fatalf("resumes = %d, want >= 1", st.Resumes)
	}
}

// A resume dial begun while the path was black-holed, whose connection
// stays dead after the path came back (a route that changed under it),
// is abandoned long before the dial timeout, and a new dial resumes the
// session.
func TestResumeAbandonsStrandedDial(t *testing.T) {
	target := testutil.EchoServer(t).Addr
	srv := fastServer(t, target, time.Minute, nil)
	fault, sess := throughFaultWith(t, srv, func(c *client.Config) { c.DialTimeout = 2 * time.Minute })
	c := liveStream(t, sess)

	dialsBefore := fault.Accepted()
	fault.Freeze()
	if !testutil.Poll(20*time.Second, func() bool { return fault.Accepted() > dialsBefore }) {
		t.Fatal("no resume dial after the path froze")
	}
	if n := fault.Strand(); n == 0 {
		t.Fatal("nothing to strand")
	}
	fault.Thaw()
	// The stranded dial would hold the session for the dial timeout
	// (2 min); the first resume attempt gets a few seconds.
	done := make(chan struct{})
	go func() {
		defer close(done)
		echo(t, c, "after the new route")
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = c.Close()
		<-done
		t.Fatal("the session did not resume within a minute: the stranded dial held it")
	}
}

// Using a session that waits out a long backoff brings the next resume
// attempt forward: whoever opened a stream or typed into one waits about
// client.HurryFloor, not the rest of a backoff grown to 10 s in a long
// outage (10 min here, so that only the hurry can resume in time).
func TestUseHurriesResume(t *testing.T) {
	for _, tc := range []struct {
		name string
		use  func(t *testing.T, sess *client.Session, old net.Conn)
	}{
		{"open a stream", func(t *testing.T, sess *client.Session, old net.Conn) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := sess.OpenStream(ctx, "")
			if err != nil {
				t.Fatalf("open on a session waiting out its backoff: %v (the open did not bring the resume forward)", err)
			}
			defer c.Close()
			echo(t, c, "opened during the outage")
			echo(t, old, "open before the outage")
		}},
		{"type into a stream", func(t *testing.T, _ *client.Session, old net.Conn) {
			_ = old.SetDeadline(time.Now().Add(20 * time.Second))
			echo(t, old, "typed during the outage")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sess, old := backingOff(t, client.Backoff{Min: 10 * time.Minute, Max: 10 * time.Minute, StableAfter: time.Hour})
			tc.use(t, sess, old)
		})
	}
}

// A session carrying streams redials at least every Backoff.MaxBusy,
// though nobody types: a path that comes back now and then (a flapping
// link) is tried while it is up, not once every Max (10 min here).
func TestBusySessionRedialsWithinMaxBusy(t *testing.T) {
	sess, old := backingOff(t, client.Backoff{Min: 10 * time.Minute, Max: 10 * time.Minute, MaxBusy: 300 * time.Millisecond, StableAfter: time.Hour})
	if !testutil.Poll(20*time.Second, func() bool { return !sess.Resuming() }) {
		t.Fatal("a session with an open stream waited out its backoff of 10 min, not its 300 ms busy limit")
	}
	_ = old.SetDeadline(time.Now().Add(10 * time.Second))
	echo(t, old, "after the outage")
}

// An open given up on during an outage (a proxy's connect timeout)
// leaves no stream behind: the session, idle again, waits out its full
// backoff rather than the busy one. A FIN kept the abandoned stream in
// the session for the stream close timeout (5 min), redialling every
// 2 s instead of 10.
func TestAbandonedOpenLeavesSessionIdle(t *testing.T) {
	sw, sess := lostWhileDown(t, 300*time.Millisecond)
	first := sess.ResumeError()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err := sess.OpenStream(ctx, "")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("open during the outage: %v, want the context's deadline", err)
	}
	// The open hurried one more attempt, which meets the 503 too. Its
	// failure, not its connection's accept, is waited for: a server let
	// up between the two would answer that very attempt.
	if !testutil.Poll(10*time.Second, func() bool { return sess.ResumeError() != first }) {
		t.Fatal("the open did not hurry a resume attempt")
	}
	if !testutil.Poll(10*time.Second, func() bool { return sess.Mux().NumStreams() == 0 }) {
		t.Fatalf("the abandoned stream is still in the session (%d streams)", sess.Mux().NumStreams())
	}
	sw.down.Store(false)
	if testutil.Poll(3*time.Second, func() bool { return !sess.Resuming() }) {
		t.Fatal("an idle session redialled on the busy backoff (300 ms), not its full one (10 min)")
	}
}

// A session that chose the busy backoff for a stream given up on while
// the redial that stream hurried was failing looks again when that short
// delay is over, and, idle by then, waits out its full backoff.
func TestBusyBackoffLooksAgain(t *testing.T) {
	sw, sess := lostWhileDown(t, 2*time.Second)
	first := sess.ResumeError()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opened := make(chan error, 1)
	go func() {
		_, err := sess.OpenStream(ctx, "")
		opened <- err
	}()
	// The open hurries an attempt, which meets the 503 while the stream
	// waits: the session, busy, picks the 2 s backoff.
	if !testutil.Poll(10*time.Second, func() bool { return sess.ResumeError() != first }) {
		t.Fatal("the open did not hurry a resume attempt")
	}
	cancel()
	if err := <-opened; !errors.Is(err, context.Canceled) {
		t.Fatalf("open given up on: %v, want the context's cancellation", err)
	}
	if n := sess.Mux().NumStreams(); n != 0 {
		t.Fatalf("the abandoned stream is still in the session (%d streams)", n)
	}
	sw.down.Store(false)
	if testutil.Poll(5*time.Second, func() bool { return !sess.Resuming() }) {
		t.Fatal("a session idle again redialled on the busy backoff (2 s), not its full one (10 min)")
	}
}

// lostWhileDown opens a session with a stream-less backoff of 10 min
// (maxBusy with streams), cuts its WebSocket while the server answers
// 503, and returns once the first resume attempt has failed, with the
// server still answering so.
func lostWhileDown(t *testing.T, maxBusy time.Duration) (*swapHandler, *client.Session) {
	t.Helper()
	target := testutil.EchoServer(t).Addr
	sw := &swapHandler{}
	sw.h.Store(fastServer(t, target, time.Minute, nil))
	fault, sess := throughFaultWith(t, sw, func(c *client.Config) {
		c.Backoff = client.Backoff{Min: 10 * time.Minute, Max: 10 * time.Minute, MaxBusy: maxBusy, StableAfter: time.Hour}
	})
	sw.down.Store(true)
	fault.Cut()
	if !testutil.Poll(10*time.Second, func() bool { return sess.ResumeError() != nil }) {
		t.Fatal("no failed resume attempt after the cut")
	}
	return sw, sess
}

// backingOff opens a session with backoff b and a live stream, cuts its
// WebSocket while the server answers 503, and returns once the first
// resume attempt has failed, with the server back: the session waits
// out b's first delay.
func backingOff(t *testing.T, b client.Backoff) (*client.Session, net.Conn) {
	t.Helper()
	return backingOffOn(t, b, 0)
}

// backingOffOn is backingOff with the failed attempt answered with the
// HTTP status code (0: 503).
func backingOffOn(t *testing.T, b client.Backoff, code int) (*client.Session, net.Conn) {
	t.Helper()
	target := testutil.EchoServer(t).Addr
	var sw swapHandler
	sw.h.Store(fastServer(t, target, time.Minute, nil))
	fault, sess := throughFaultWith(t, &sw, func(c *client.Config) { c.Backoff = b })
	old := liveStream(t, sess).(net.Conn)
	sw.downStatus.Store(int32(code))
	sw.down.Store(true)
	fault.Cut()
	// The first attempt comes at once and meets the 503.
	if !testutil.Poll(10*time.Second, func() bool { return sess.ResumeError() != nil }) {
		t.Fatal("no failed resume attempt after the cut")
	}
	sw.down.Store(false)
	return sess, old
}

// A resume answered by something other than the server, as while a
// network is being switched (an edge that has not found the sandbox yet,
// a captive portal's page or redirect), is retried until the server
// answers (spec §9.5), instead of ending the session as on a first dial;
// but not for the whole resume timeout: such answers for longer than
// Config.ForeignAnswers mean the sandbox is gone. Credentials refused
// still end it at once.
func TestResumeRetriesPastOtherAnswers(t *testing.T) {
	fast := client.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond, StableAfter: time.Second}
	for _, code := range []int{http.StatusNotFound, http.StatusOK, http.StatusFound} {
		sess, old := backingOffOn(t, fast, code)
		var de *client.DialError
		if err := sess.ResumeError(); !errors.As(err, &de) || de.StatusCode != code {
			t.Fatalf("%d: the failed attempt: %v", code, err)
		}
		echo(t, old, "after the outage")
	}
	for _, code := range []int{http.StatusNotFound, http.StatusUnauthorized} {
		var sw swapHandler
		sw.h.Store(fastServer(t, testutil.EchoServer(t).Addr, time.Minute, nil))
		fault, sess := throughFaultWith(t, &sw, func(c *client.Config) { c.Backoff, c.ForeignAnswers = fast, 300*time.Millisecond })
		old := liveStream(t, sess)
		sw.downStatus.Store(int32(code))
		sw.down.Store(true)
		fault.Cut()
		var nr *mux.NotResumedError
		var de *client.DialError
		if err := readErr(t, old); !errors.As(err, &nr) || !errors.As(err, &de) || de.StatusCode != code {
			t.Fatalf("%d on every resume attempt: the stream ended with %v, want a NotResumedError for it", code, err)
		}
	}
}

func TestResumeGraceExpiry(t *testing.T) {
	target := testutil.EchoServer(t).Addr
	srv := fastServer(t, target, time.Second, nil)
	fault, sess := throughFault(t, srv)
	c := liveStream(t, sess)

	fault.Freeze()
	// Wait until the server has dropped the session after its grace.
	if !testutil.Poll(10*time.Second, func() bool { return srv.Stats().ActiveSessions == 0 }) {
		t.Fatal("server kept the detached session past its grace")
	}
	fault.Thaw()
	err := readErr(t, c)
	var nr *mux.NotResumedError
	if !errors.As(err, &nr) || !errors.Is(err, mux.ErrUnknownSession) {
		t.Fatalf("stream ended with %v, want a NotResumedError for an unknown session", err)
	}
	want := "could not be resumed: the server no longer knows this session (it restarted, or the grace period ran out)"
	if nr.Error() != want {
		t.Fatalf("error text %q\nwant %q", nr.Error(), want)
	}
}

// afterRestart opens a stream through a fault proxy, restarts the server
// behind it (a new one, with the given grace, and no state), cuts the
// WebSocket and returns the session, the proxy and how the stream ended.
func afterRestart(t *testing.T, grace time.Duration) (*client.Session, *netem.Proxy, error) {
	t.Helper()
	target := testutil.EchoServer(t).Addr
	var sw swapHandler
	sw.h.Store(fastServer(t, target, 30*time.Second, nil))
	fault, sess := throughFault(t, &sw)
	c := liveStream(t, sess)
	sw.h.Store(fastServer(t, target, grace, nil))
	fault.Cut()
	err := readErr(t, c)
	return sess, fault, err
}

func TestResumeAfterServerRestart(t *testing.T) {
	sess, fault, err := afterRestart(t, 30*time.Second)
	if !errors.Is(err, mux.ErrUnknownSession) {
		t.Fatalf("stream ended with %v, want unknown session", err)
	}
	select {
	case <-sess.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session still open after the server forgot it")
	}
	// A fresh session works at once.
	fresh, err := client.Dial(context.Background(), fastClient("ws://"+fault.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	liveStream(t, fresh)
}

// A resume to a server restarted with resumption off is told that, not
// that a protocol version is unknown.
func TestResumeAfterRestartWithResumeOff(t *testing.T) {
	_, _, err := afterRestart(t, 0) // restarted with --resume-grace 0
	var nr *mux.NotResumedError
	if !errors.As(err, &nr) || !strings.HasSuffix(err.Error(), "400 Bad Request: this server does not resume sessions (started with --resume-grace 0)") {
		t.Fatalf("stream ended with %v, want the server's resumption being off", err)
	}
}

func TestResumeWrongSecretOrCredentials(t *testing.T) {
	target := testutil.EchoServer(t).Addr
	var logs testutil.Buffer
	srv := fastServer(t, target, 30*time.Second, &logs)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	url := "ws://" + hs.Listener.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	dial := func(header http.Header) *websocket.Conn {
		ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{mux.SubprotocolResumable}, HTTPHeader: header})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ws.CloseNow() })
		return ws
	}
	w, err := mux.ClientHandshake(ctx, dial(nil), mux.Hello{})
	if err != nil || w.Status != mux.WelcomeNew {
		t.Fatalf("new session: %v %v", w.Status, err)
	}
	wrong := w.Secret
	wrong[0] ^= 1
	got, err := mux.ClientHandshake(ctx, dial(nil), mux.Hello{ID: w.ID, Secret: wrong})
	if err != nil || !errors.Is(got.Err(), mux.ErrResumeDenied) {
		t.Fatalf("wrong secret: status %v, err %v; want denied", got.Status, err)
	}
	got, err = mux.ClientHandshake(ctx, dial(http.Header{"Authorization": {"Bearer other"}}), mux.Hello{ID: w.ID, Secret: w.Secret})
	if err != nil || !errors.Is(got.Err(), mux.ErrResumeDenied) {
		t.Fatalf("other credentials: status %v, err %v; want denied", got.Status, err)
	}
	if n := strings.Count(logs.String(), "resume refused: wrong resume secret or credentials"); n != 2 {
		t.Fatalf("logged %d refusals, want 2:\n%s", n, logs.String())
	}
	var unknown [mux.SessionIDSize]byte
	unknown[0] = 1
	got, err = mux.ClientHandshake(ctx, dial(nil), mux.Hello{ID: unknown})
	if err != nil || !errors.Is(got.Err(), mux.ErrUnknownSession) {
		t.Fatalf("unknown id: status %v, err %v; want unknown", got.Status, err)
	}
	// Logged at most a few times a minute, but each one counted, for
	// sandmux_refusals_total: a flood of guesses shows there.
	if n := srv.Stats().RefusedResumes; n != 3 {
		t.Fatalf("RefusedResumes = %d, want 3 (two denied, one unknown)", n)
	}
	if want := "the server refused to resume the session (wrong resume secret or credentials)"; mux.ErrResumeDenied.Error() != want {
		t.Fatalf("denied text %q", mux.ErrResumeDenied.Error())
	}
}

func TestResumeDisabledEitherSide(t *testing.T) {
	target := testutil.EchoServer(t).Addr
	for _, tc := range []struct {
		name        string
		serverGrace time.Duration
		noResume    bool
	}{
		{"server off (old server)", 0, false},
		{"client off (old client)", 30 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fastServer(t, target, tc.serverGrace, nil)
			hs := httptest.NewServer(srv)
			defer hs.Close()
			cfg := fastClient("ws://" + hs.Listener.Addr().String())
			cfg.NoResume = tc.noResume
			sess, err := client.Dial(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			if sess.Resumable() {
				t.Fatal("session is resumable with resumption off on one side")
			}
			liveStream(t, sess)
		})
	}
}

// A resume claiming bytes the server never sent ends the session without
// a welcome (a protocol error, not a "resumed" or an "unknown session"),
// and is not counted as a resumption.
func TestResumeBeyondWhatWasSent(t *testing.T) {
	srv, url := limitedServer(t, func(c *server.Config) { c.ResumeGrace = 30 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	w := newV2Session(t, ctx, url)
	ws2, _, err := dialResume(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer ws2.CloseNow()
	w2, err := mux.ClientHandshake(ctx, ws2, mux.Hello{ID: w.ID, Secret: w.Secret, Received: 1 << 40})
	if err == nil {
		t.Fatalf("the server answered a resume from beyond what it sent: %v", w2.Status)
	}
	if n := srv.Stats().Resumes; n != 0 {
		t.Fatalf("%d resumptions counted, want 0", n)
	}
}

// The attempt after a resume that claimed bytes never sent meets
// "unknown session" (spec §9.4), even when it comes before the ended
// session is forgotten: it used to find the session still registered,
// inherit the protocol error that ended it, and be dropped without a
// welcome, like the attempt that broke the protocol.
func TestResumeAfterOneBeyondWhatWasSent(t *testing.T) {
	_, url := limitedServer(t, func(c *server.Config) { c.ResumeGrace = 30 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	// The window is short: a few sessions make it certain to be met.
	for range 20 {
		w := newV2Session(t, ctx, url)
		for i, recv := range []uint64{1 << 40, 0} {
			ws, _, err := dialResume(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			w2, err := mux.ClientHandshake(ctx, ws, mux.Hello{ID: w.ID, Secret: w.Secret, Received: recv})
			_ = ws.CloseNow()
			if i == 1 && (err != nil || w2.Status != mux.WelcomeUnknown) {
				t.Fatalf("next attempt: %v, %v; want status %v", w2.Status, err, mux.WelcomeUnknown)
			}
		}
	}
}

// newV2Session starts a resumable session by hand, on a WebSocket closed
// when the test ends, and returns the server's welcome.
func newV2Session(t *testing.T, ctx context.Context, url string) mux.Welcome {
	t.Helper()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{mux.SubprotocolResumable}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	w, err := mux.ClientHandshake(ctx, ws, mux.Hello{})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// dialResume opens a WebSocket as a resume does (Sandmux-Resume, v2 only).
func dialResume(ctx context.Context, url string) (*websocket.Conn, *http.Response, error) {
	return websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{mux.SubprotocolResumable},
		HTTPHeader: http.Header{mux.ResumeHeader: {"1"}}})
}
