package server_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/yamux"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/netem"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
	"github.com/sandmux/sandmux/server"
)

func limitedServer(t *testing.T, mod func(*server.Config)) (*server.Server, string) {
	t.Helper()
	return testutil.SandmuxServer(t, func(c *server.Config) {
		c.Mux.KeepAliveInterval = 200 * time.Millisecond
		mod(c)
	})
}

func TestStreamLimit(t *testing.T) {
	srv, url := limitedServer(t, func(c *server.Config) { c.MaxStreams = 2 })
	sess, err := client.Dial(context.Background(), fastClient(url))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	a, b := liveStream(t, sess), liveStream(t, sess)
	wantLimitRefusal(t, srv, sess, "server at its stream limit (2); close some connections to it or raise --max-streams")
	echo(t, a, "still here")
	echo(t, b, "me too")
	_ = a.Close()
	openOnceFreed(t, sess)
}

// wantLimitRefusal opens one more stream on sess, which srv must refuse
// for a limit with the line want, as its first refusal.
func wantLimitRefusal(t *testing.T, srv *server.Server, sess *client.Session, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := sess.OpenStream(ctx, "")
	var se *mux.StreamError
	if !errors.As(err, &se) || se.Status != mux.StatusLimit {
		t.Fatalf("a stream past the limit: %v, want a limit refusal", err)
	}
	if err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	if got := srv.Stats().RefusedStreams; got != 1 {
		t.Fatalf("refused streams = %d, want 1", got)
	}
}

// openOnceFreed opens a stream on sess, which a stream just closed made
// room for, and echoes on it.
func openOnceFreed(t *testing.T, sess *client.Session) {
	t.Helper()
	var c net.Conn
	var err error
	if !testutil.Poll(5*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err = sess.OpenStream(ctx, "")
		return err == nil
	}) {
		t.Fatalf("no room after a stream closed: %v", err)
	}
	echo(t, c, "a freed place is usable")
	_ = c.Close()
}

// Both limit lines read right at a limit of 1: the total one said "limit
// of 1 streams".
func TestStreamLimitsOfOne(t *testing.T) {
	for _, tt := range []struct {
		maxStreams, maxTotal int
		want                 string
	}{
		{1, 2, "server at its stream limit (1); close some connections to it or raise --max-streams"},
		{1, 1, "server at its limit of 1 stream across all sessions; close some connections to it or raise --max-total-streams"},
	} {
		srv, url := limitedServer(t, func(c *server.Config) { c.MaxStreams, c.MaxTotalStreams = tt.maxStreams, tt.maxTotal })
		sess, err := client.Dial(context.Background(), fastClient(url))
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		liveStream(t, sess)
		wantLimitRefusal(t, srv, sess, tt.want)
	}
}

// TestTotalStreamLimit: a client cannot multiply the per-session stream
// limit by opening more sessions. Each stream holds a connection to its
// target; --max-streams in each of --max-sessions sessions (25,600 by
// default) is past many a sandbox's file descriptors, and a server out of
// them accepts no one, not even a resume.
func TestTotalStreamLimit(t *testing.T) {
	srv, url := limitedServer(t, func(c *server.Config) { c.MaxStreams, c.MaxTotalStreams = 2, 3 })
	a, err := client.Dial(context.Background(), fastClient(url))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := client.Dial(context.Background(), fastClient(url))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a1, a2, b1 := liveStream(t, a), liveStream(t, a), liveStream(t, b)
	// The fourth stream, on the session with one.
	wantLimitRefusal(t, srv, b, "server at its limit of 3 streams across all sessions; close some connections to it or raise --max-total-streams")
	echo(t, a1, "still here")
	echo(t, a2, "me too")
	echo(t, b1, "and me")
	_ = a1.Close()
	openOnceFreed(t, b)
}

func TestSessionLimitAdmitsResumes(t *testing.T) {
	srv, url := limitedServer(t, func(c *server.Config) { c.MaxSessions = 1; c.ResumeGrace = 30 * time.Second })
	fault, err := netem.Start(netem.Config{Target: url[len("ws://"):]})
	if err != nil {
		t.Fatal(err)
	}
	defer fault.Close()
	first, err := client.Dial(context.Background(), fastClient("ws://"+fault.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	c := liveStream(t, first)

	_, err = client.Dial(context.Background(), fastClient(url))
	want := url + ": 503 Service Unavailable: server at its session limit (1); close some sessions or raise --max-sessions"
	if err == nil || err.Error() != want {
		t.Fatalf("second session: %v\nwant %s", err, want)
	}
	if got := srv.Stats().RefusedSessions; got != 1 {
		t.Fatalf("refused sessions = %d, want 1", got)
	}
	// The session that holds the slot comes back after a cut.
	fault.Cut()
	echo(t, c, "resumed at the limit")
}

// TestSessionLimitNamesLostSessions: at the session limit because of
// sessions whose clients went away without a word (killed, a laptop that
// never woke), the refusal says so and what to change: "close some
// sessions" alone read as nonsense to a user who had none open.
func TestSessionLimitNamesLostSessions(t *testing.T) {
	_, url := limitedServer(t, func(c *server.Config) { c.MaxSessions = 1; c.ResumeGrace = 10 * time.Minute })
	fault, err := netem.Start(netem.Config{Target: url[len("ws://"):]})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := client.Dial(context.Background(), fastClient("ws://"+fault.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer gone.Close()
	liveStream(t, gone)
	_ = fault.Close() // the client is gone: its every resume fails
	want := url + ": 503 Service Unavailable: server at its session limit (1, 1 of them lost and waiting up to --resume-grace 10m0s to be resumed); close some sessions, or raise --max-sessions or lower --resume-grace"
	testutil.WaitFor(t, waitTimeout, "the refusal to name the lost session", func() bool {
		_, err := client.Dial(context.Background(), fastClient(url))
		if err == nil {
			t.Fatal("a second session was admitted at the limit")
		}
		return err.Error() == want
	})
}

func TestIdleTimeout(t *testing.T) {
	srv, url := limitedServer(t, func(c *server.Config) { c.IdleTimeout = 300 * time.Millisecond; c.ResumeGrace = 0 })
	sess, err := client.Dial(context.Background(), fastClient(url))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	c := liveStream(t, sess)
	_ = c.Close()
	select {
	case <-sess.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("idle session was not closed")
	}
	// The client sees the close before the server's bookkeeping finishes.
	if !testutil.Poll(5*time.Second, func() bool { return srv.Stats().ActiveSessions == 0 }) {
		t.Fatalf("active sessions = %d after the idle timeout", srv.Stats().ActiveSessions)
	}
}

// An upgrade marked as a resume is admitted past --max-sessions (its
// session holds a slot already), so it may only resume: a new session on
// it is refused, and such upgrades are capped at the limit as well.
func TestResumeHeaderTakesNoNewSession(t *testing.T) {
	srv, url := limitedServer(t, func(c *server.Config) { c.MaxSessions = 1; c.ResumeGrace = 30 * time.Second })
	first, err := client.Dial(context.Background(), fastClient(url))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	liveStream(t, first)
	cfg := fastClient(url)
	cfg.Header = http.Header{mux.ResumeHeader: {"1"}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if sess, err := client.Dial(ctx, cfg); err == nil {
		_, err = sess.OpenStream(ctx, "")
		_ = sess.Close()
		if err == nil {
			t.Fatal("a new session marked as a resume was served past --max-sessions 1")
		}
	}
	if got := srv.Stats().ActiveSessions; got != 1 {
		t.Fatalf("%d sessions active with --max-sessions 1", got)
	}
	// The resume slots are capped too: hold one open without a hello
	// (once the refused upgrade above has given its slot back).
	var hold *websocket.Conn
	if !testutil.Poll(waitTimeout, func() bool {
		hold, _, err = dialResume(ctx, url)
		return err == nil
	}) {
		t.Fatal(err)
	}
	defer hold.CloseNow()
	_, resp, err := dialResume(ctx, url)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a second resume upgrade in progress with --max-sessions 1: %v, want 503", err)
	}
}

// A refused stream's data is read and dropped until the peer finishes the
// stream, never kept: a peer holding refused streams open and sending on
// them pinned a window of data each, without bound. Refusals beyond four
// times MaxStreams waiting at once are reset instead of answered.
func TestRefusedStreamsKeepNoData(t *testing.T) {
	_, url := limitedServer(t, func(c *server.Config) {
		c.MaxStreams = 1
		// The default keepalive, not limitedServer's: at 200 ms the server
		// closes a session that it heard nothing from for 300 ms, and on a
		// loaded machine the 80 MiB below (under the race detector) stalled
		// that long, so the session was closed as dead mid-write.
		c.Mux.KeepAliveInterval = mux.DefaultConfig().KeepAliveInterval
	})
	ys := rawYamux(t, url)
	open := func() (net.Conn, mux.Reply, error) { return openDefault(t, ys) }
	live, rep, err := open()
	if err != nil || rep.Status != mux.StatusOK {
		t.Fatalf("first stream: %v %v", rep, err)
	}
	defer live.Close()
	refused, rep, err := open()
	if err != nil || rep.Status != mux.StatusLimit {
		t.Fatalf("second stream: %v %v, want a limit refusal", rep, err)
	}
	// More than the largest window (64 MiB): it only goes through if the
	// server reads it.
	junk := make([]byte, 1<<20)
	for i := range 80 {
		if _, err := refused.Write(junk); err != nil {
			t.Fatalf("writing MiB %d on the refused stream: %v", i, err)
		}
	}
	for range 3 { // up to four refusals waiting for their peer
		held, rep, err := open()
		if err != nil || rep.Status != mux.StatusLimit {
			t.Fatalf("refused stream: %v %v, want a limit refusal", rep, err)
		}
		defer held.Close()
	}
	if _, rep, err := open(); !errors.Is(err, yamux.ErrConnectionReset) {
		t.Fatalf("a fifth refusal held at once: %v, %v; want a reset", rep, err)
	}
	_ = refused.Close()
}

// openDefault opens a stream to the default target on ys and reads the
// server's reply.
func openDefault(t *testing.T, ys *yamux.Session) (net.Conn, mux.Reply, error) {
	t.Helper()
	hdr, _ := mux.Request{}.MarshalBinary()
	st, err := ys.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	_ = st.SetDeadline(time.Now().Add(waitTimeout))
	// The server may reset a stream on its SYN, before the header goes
	// out; the caller judges that error as it does the reply's.
	if _, err := st.Write(hdr); err != nil {
		return st, mux.Reply{}, err
	}
	rep, err := mux.ReadReply(st)
	return st, rep, err
}

// Refused streams waiting for their peer's FIN are bounded across
// sessions too, by four times --max-total-streams: each holds a goroutine
// and a stream (about 7 KiB), and four times --max-streams in each of
// --max-sessions sessions was 102,400 of them, 700 MB.
func TestRefusalsWaitingAreBoundedAcrossSessions(t *testing.T) {
	_, url := limitedServer(t, func(c *server.Config) { c.MaxStreams, c.MaxTotalStreams = 2, 1 })
	a, b := rawYamux(t, url), rawYamux(t, url)
	live, rep, err := openDefault(t, a)
	if err != nil || rep.Status != mux.StatusOK {
		t.Fatalf("first stream: %v %v", rep, err)
	}
	defer live.Close()
	// Four refusals may wait, two on each session: each session's own
	// bound (eight) is far.
	for i, ys := range []*yamux.Session{a, a, b, b} {
		held, rep, err := openDefault(t, ys)
		if err != nil || rep.Status != mux.StatusLimit {
			t.Fatalf("refusal %d: %v %v, want a limit refusal", i, rep, err)
		}
		defer held.Close()
	}
	if _, rep, err := openDefault(t, b); !errors.Is(err, yamux.ErrConnectionReset) {
		t.Fatalf("a fifth refusal held at once in the server: %v, %v; want a reset", rep, err)
	}
}

// A burst of streams past --max-streams from a client that closes each
// refused stream at once is told the limit, every one.
func TestBurstBeyondStreamLimit(t *testing.T) {
	_, url := limitedServer(t, func(c *server.Config) { c.MaxStreams = 2 })
	sess, err := client.Dial(context.Background(), fastClient(url))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	liveStream(t, sess)
	liveStream(t, sess)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	const burst = 6
	errs := make(chan error, burst)
	for range burst {
		go func() {
			c, err := sess.OpenStream(ctx, "")
			if err == nil {
				_ = c.Close()
			}
			errs <- err
		}()
	}
	for range burst {
		var se *mux.StreamError
		if err := <-errs; !errors.As(err, &se) || se.Status != mux.StatusLimit {
			t.Errorf("open past the limit: %v, want the stream limit", err)
		}
	}
}

// A resume takes over a session's WebSocket that the server has not yet
// noticed is dead, at the session limit too, and again on the next
// outage: a resume holds its own slot only until it has attached.
func TestResumeTakeoverAtSessionLimit(t *testing.T) {
	_, url := limitedServer(t, func(c *server.Config) {
		c.MaxSessions = 1
		c.ResumeGrace = 30 * time.Second
		c.Mux.KeepAliveInterval = time.Minute // the server notices no dead path here
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	w := newV2Session(t, ctx, url)
	for i := range 3 {
		ws2, _, err := dialResume(ctx, url)
		if err != nil {
			t.Fatalf("resume %d: %v", i+1, err)
		}
		defer ws2.CloseNow()
		w2, err := mux.ClientHandshake(ctx, ws2, mux.Hello{ID: w.ID, Secret: w.Secret})
		if err != nil || w2.Status != mux.WelcomeResumed {
			t.Fatalf("resume %d: %v %v", i+1, w2.Status, err)
		}
	}
}

// A stream opened while the server drains is told so, naming the target
// it asked for, and counted among the streams opened.
func TestDrainRefusal(t *testing.T) {
	srv, url := limitedServer(t, func(c *server.Config) {})
	sess, err := client.Dial(context.Background(), fastClient(url))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	liveStream(t, sess) // keeps the drain waiting
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	defer func() { cancel(); <-done }()
	testutil.WaitFor(t, waitTimeout, "the drain", func() bool {
		resp, err := http.Get("http" + strings.TrimPrefix(url, "ws") + "/healthz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	_, err = sess.OpenStream(ctx, "")
	if err == nil || !strings.HasPrefix(err.Error(), "server could not open a stream to 127.0.0.1:") ||
		!strings.HasSuffix(err.Error(), ": server is shutting down; open a new connection in a moment") {
		t.Fatalf("stream opened in the drain: %v", err)
	}
	if got := srv.Stats().Streams; got != 2 {
		t.Errorf("streams counted: %d, want 2 (the refused one included)", got)
	}
}
