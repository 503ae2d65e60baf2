package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/netem"
	"github.com/sandmux/sandmux/internal/testutil"
)

// echoOnce opens a stream through the agent in dir and checks one echo.
func echoOnce(t *testing.T, dir string, req OpenRequest, start ...func() error) net.Conn {
	t.Helper()
	starter := noStart
	if len(start) > 0 {
		starter = start[0]
	}
	c, err := Open(context.Background(), dir, starter, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo %q, %v", got, err)
	}
	return c
}

// A session the agent drops after --persist unused stays closed: its
// maintainer used to redial it, leaving a WebSocket no entry knew of.
func TestReapedSessionStaysClosed(t *testing.T) {
	srv, url := testutil.SandmuxServer(t, nil)
	dir := shortDir(t)
	runAgent(t, dir, func(c *Config) { c.Persist = 300 * time.Millisecond })
	// A stream on one session keeps the agent up; another session (other
	// resume settings, so another key) is used once and left.
	keep := echoOnce(t, dir, OpenRequest{URL: url, Host: "a", ConnectTimeout: 5 * time.Second})
	defer keep.Close()
	once := echoOnce(t, dir, OpenRequest{URL: url, Host: "b", ConnectTimeout: 5 * time.Second, Resume: &ResumeOptions{Timeout: time.Minute}})
	_ = once.Close()

	sessions := func() int {
		st, err := GetStatus(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		return len(st.Sessions)
	}
	if !testutil.Poll(10*time.Second, func() bool { return sessions() == 1 && srv.Stats().ActiveSessions == 1 }) {
		t.Fatalf("after --persist: %d sessions in status, %d at the server; want 1 and 1", sessions(), srv.Stats().ActiveSessions)
	}
	// Nothing may dial it again: the server saw two WebSockets in all.
	if testutil.Poll(time.Second, func() bool { return srv.Stats().Sessions > 2 }) {
		t.Fatalf("the dropped session was redialled: %d WebSockets in all", srv.Stats().Sessions)
	}
}

// The agent does not exit under a proxy still waiting for its session:
// the proxy waits its whole --connect-timeout and hears why it failed.
func TestAgentStaysForAWaitingRequest(t *testing.T) {
	down := "ws://" + deadServer(t)
	dir := shortDir(t)
	runAgent(t, dir, func(c *Config) { c.Persist = 100 * time.Millisecond })
	const wait = 1500 * time.Millisecond
	start := time.Now()
	_, err := Open(context.Background(), dir, noStart, OpenRequest{URL: down, Host: "box", ConnectTimeout: wait})
	if err == nil || !strings.Contains(err.Error(), "could not connect to "+down+" within 1.5s") {
		t.Fatalf("open: %v, want the failed dial", err)
	}
	if d := time.Since(start); d < wait {
		t.Fatalf("open failed after %v, before its connect timeout of %v: the agent left under it", d, wait)
	}
}

// A new agent waits for the proxy that started it however short
// --persist is, then exits once that proxy is done.
func TestNewAgentWaitsForItsFirstRequest(t *testing.T) {
	_, url := testutil.SandmuxServer(t, nil)
	dir := shortDir(t)
	done := startServing(t, dir, 10*time.Millisecond)
	exited := func() bool {
		select {
		case err := <-done:
			done <- err
			return true
		default:
			return false
		}
	}
	if testutil.Poll(500*time.Millisecond, exited) {
		t.Fatal("the agent exited before its first request")
	}
	c := echoOnce(t, dir, OpenRequest{URL: url, Host: "box", ConnectTimeout: 5 * time.Second})
	_ = c.Close()
	if !testutil.Poll(10*time.Second, exited) {
		t.Fatal("the agent did not exit after --persist")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A request the agent closes unanswered, as an agent reaching --persist
// does to one still in its listener's queue, is asked again of a new
// agent rather than failed.
func TestOpenRetriesAnAgentThatLeft(t *testing.T) {
	_, url := testutil.SandmuxServer(t, nil)
	dir, ln := fakeAgent(t)
	left := make(chan struct{})
	go func() {
		defer close(left)
		c, err := ln.Accept()
		_ = ln.Close() // gone before the proxy asks again
		if err == nil {
			_ = c.Close()
		}
	}()
	started := 0
	start := func() error {
		started++
		runAgent(t, dir, nil)
		return nil
	}
	c, err := Open(context.Background(), dir, start, OpenRequest{URL: url, Host: "box", ConnectTimeout: 5 * time.Second})
	<-left
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer c.Close()
	if started != 1 {
		t.Fatalf("started %d agents, want 1", started)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo %q, %v", got, err)
	}
}

// Two agents started on one directory at once: one serves, the other
// says another is running, and the one serving stays reachable.
func TestOneAgentPerDirectory(t *testing.T) {
	dir := shortDir(t)
	const n = 6
	errs := make(chan error, n)
	ctx, cancel := context.WithCancel(context.Background())
	for range n {
		a, err := New(DefaultConfig(dir))
		if err != nil {
			t.Fatal(err)
		}
		go func() { errs <- a.Serve(ctx) }()
	}
	for range n - 1 {
		if err := <-errs; !errors.Is(err, ErrAlreadyRunning) {
			t.Errorf("serve: %v, want ErrAlreadyRunning", err)
		}
	}
	if !testutil.Poll(5*time.Second, func() bool { _, err := GetStatus(context.Background(), dir); return err == nil }) {
		t.Error("the agent left serving is unreachable")
	}
	cancel()
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// An agent that has stopped accepting lets the next one serve at once,
// though it may take seconds more to close a session whose server went
// silent.
func TestNextAgentServesWhileTheLastCloses(t *testing.T) {
	dir, firstDone, fault := servingFrozen(t)
	// Stop waits for the sessions' close; this test does not.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := Stop(ctx, dir); !errors.Is(err, ErrStopSlow) {
		t.Fatalf("stop: %v, want %v", err, ErrStopSlow)
	}
	runAgent(t, dir, nil) // fails if the first still held the run lock
	select {
	case err := <-firstDone:
		t.Logf("the first agent had finished closing (%v): the test proved nothing", err)
	default:
	}
	fault.Thaw()
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
}

// `agent --stop` returns once the agent has closed its sessions, even two
// whose paths froze (their closes wait out a timeout), not just once its
// socket is gone: a script that stops the agent and
// then replaces the binary or checks the server finds them closed.
func TestStopWaitsForSessionsToClose(t *testing.T) {
	dir := shortDir(t)
	logs := &testutil.Buffer{}
	runAgent(t, dir, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	for _, token := range []string{"a", "b"} { // two sessions to one server
		_, fault := faultyServer(t)
		c := echoOnce(t, dir, OpenRequest{URL: "ws://" + fault.Addr(), Token: token, Host: "box", ConnectTimeout: 5 * time.Second})
		_ = c.Close()
		fault.Freeze()
		defer fault.Thaw()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Stop(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `msg="agent stopped"`) {
		t.Fatalf("stop returned before the agent had closed its sessions:\n%s", logs.String())
	}
}

// A request whose stream takes longer to open than --persist (a slow
// path: the new session's reply is a round trip away) keeps its session:
// the agent used to drop it under the request, which then waited out its
// whole connect timeout.
func TestSlowOpenOutlastsPersist(t *testing.T) {
	_, url := testutil.SandmuxServer(t, nil)
	slow, err := netem.Start(netem.Config{Target: strings.TrimPrefix(url, "ws://"), Delay: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	dir := shortDir(t)
	runAgent(t, dir, func(c *Config) { c.Persist = 200 * time.Millisecond })
	c := echoOnce(t, dir, OpenRequest{URL: "ws://" + slow.Addr(), Host: "box", ConnectTimeout: 20 * time.Second})
	_ = c.Close()
}

// Back-to-back requests to agents that exit 15 ms after each stream: every
// request is served, by the agent it reached or by a new one.
func TestRequestsAsAgentsExit(t *testing.T) {
	_, url := testutil.SandmuxServer(t, nil)
	dir := shortDir(t)
	var agents sync.WaitGroup
	defer agents.Wait()
	start := func() error {
		cfg := DefaultConfig(dir)
		cfg.Persist = 15 * time.Millisecond
		a, err := New(cfg)
		if err != nil {
			return err
		}
		agents.Go(func() {
			if err := a.Serve(context.Background()); err != nil && !errors.Is(err, ErrAlreadyRunning) {
				t.Errorf("serve: %v", err)
			}
		})
		return nil
	}
	req := OpenRequest{URL: url, Host: "box", ConnectTimeout: 5 * time.Second}
	for i := range 150 {
		c, err := Open(context.Background(), dir, start, req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_ = c.Close()
	}
	// The last agent exits on its own after --persist.
}

// fakeAgent listens on a new agent directory's socket, as an agent would,
// for a test to play the agent.
func fakeAgent(t *testing.T) (string, net.Listener) {
	t.Helper()
	dir := shortDir(t)
	if err := EnsureDir(dir); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", SocketPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	return dir, ln
}

// deadServer is an address that takes TCP connections and closes them at
// once, so every WebSocket dial to it fails (and is retried), held by the
// test so that no other process can take the port meanwhile.
func deadServer(t *testing.T) string {
	t.Helper()
	return testutil.Serve(t, func(net.Conn) {}).Addr
}

// `sandmux status` polled in a loop does not keep the agent up: only
// proxies count as use for --persist.
func TestStatusDoesNotKeepTheAgent(t *testing.T) {
	dir := shortDir(t)
	runAgent(t, dir, func(c *Config) { c.Persist = 300 * time.Millisecond })
	gone := func() bool { _, err := GetStatus(context.Background(), dir); return err != nil }
	if !testutil.Poll(10*time.Second, gone) {
		t.Fatal("the agent, asked for its status all along, did not exit after --persist")
	}
}

// agent --stop under a proxy still waiting for its session tells that
// proxy so, as it tells open streams, and starts no new agent.
func TestStopTellsAWaitingProxy(t *testing.T) {
	down := "ws://" + deadServer(t)
	dir := shortDir(t)
	runAgent(t, dir, nil)
	opened := make(chan error, 1)
	go func() {
		_, err := Open(context.Background(), dir, noStart, OpenRequest{URL: down, Host: "box", ConnectTimeout: time.Minute})
		opened <- err
	}()
	waiting := func() bool {
		st, err := GetStatus(context.Background(), dir)
		return err == nil && len(st.Sessions) == 1 && st.Sessions[0].DialErrors > 0 && st.Sessions[0].Waiting == 1
	}
	if !testutil.Poll(10*time.Second, waiting) {
		st, err := GetStatus(context.Background(), dir)
		t.Fatalf("the request never showed as waiting for its session: %+v, %v", st, err)
	}
	if err := Stop(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	if err := <-opened; err == nil || err.Error() != "the sandmux agent is shutting down" {
		t.Fatalf("open: %v, want the shutdown", err)
	}
}

// An agent exiting on --persist lets the next proxy start the next agent
// at once, though closing a session whose server went silent takes it
// seconds more.
func TestExitingAgentMakesWayAtOnce(t *testing.T) {
	url, fault := faultyServer(t)
	dir := shortDir(t)
	firstDone := startServing(t, dir, 200*time.Millisecond)
	defer func() {
		fault.Thaw()
		if err := <-firstDone; err != nil {
			t.Error(err)
		}
	}()
	c := echoOnce(t, dir, OpenRequest{URL: "ws://" + fault.Addr(), Host: "box", ConnectTimeout: 5 * time.Second})
	_ = c.Close()
	ended := func() bool {
		st, err := GetStatus(context.Background(), dir)
		return err == nil && len(st.Sessions) == 1 && st.Sessions[0].OpenStreams == 0
	}
	if !testutil.Poll(5*time.Second, ended) {
		t.Fatal("the stream did not end")
	}
	fault.Freeze()
	started := 0
	start := func() error {
		started++
		runAgent(t, dir, nil)
		return nil
	}
	// Status requests do not count as use: the first agent exits on
	// --persist meanwhile, and stops answering once it has decided to.
	if !testutil.Poll(10*time.Second, func() bool { _, err := GetStatus(context.Background(), dir); return err != nil }) {
		t.Fatal("the first agent did not exit on --persist")
	}
	c = echoOnce(t, dir, OpenRequest{URL: url, Host: "box", ConnectTimeout: 5 * time.Second}, start)
	_ = c.Close()
	if started != 1 {
		t.Fatalf("started %d agents, want 1", started)
	}
}

// servingFrozen starts an agent serving a new directory (startServing)
// with a session to a server behind a fault proxy, and then freezes the
// path: the agent's close of that session waits for a silent peer until
// the thaw (at the test's end at the latest).
func servingFrozen(t *testing.T) (dir string, done chan error, fault *netem.Proxy) {
	t.Helper()
	_, fault = faultyServer(t)
	dir = shortDir(t)
	done = startServing(t, dir, 0)
	c := echoOnce(t, dir, OpenRequest{URL: "ws://" + fault.Addr(), Host: "box", ConnectTimeout: 5 * time.Second})
	_ = c.Close()
	fault.Freeze()
	t.Cleanup(fault.Thaw)
	return dir, done, fault
}

// startServing runs an agent on dir with persist until it exits on its
// own; its Serve's error arrives on the channel returned, once the agent
// listens. The caller receives from it.
func startServing(t *testing.T, dir string, persist time.Duration) chan error {
	t.Helper()
	cfg := DefaultConfig(dir)
	cfg.Persist = persist
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(context.Background()) }()
	if !testutil.Poll(5*time.Second, func() bool { _, err := os.Stat(SocketPath(dir)); return err == nil }) {
		t.Fatal("agent did not listen")
	}
	return done
}

// faultyServer is a sandmux server and a netem proxy before it, which the
// test can freeze; the proxy closes with the test.
func faultyServer(t *testing.T) (string, *netem.Proxy) {
	t.Helper()
	_, url := testutil.SandmuxServer(t, nil)
	fault, err := netem.Start(netem.Config{Target: strings.TrimPrefix(url, "ws://")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fault.Close() })
	return url, fault
}

// serverGoneUnderSession runs an agent whose session to a server has
// carried a stream, then makes the server's address refuse connections:
// the session is being resumed against a server that is gone.
func serverGoneUnderSession(t *testing.T) (dir string, req OpenRequest) {
	t.Helper()
	_, fault := faultyServer(t)
	dir = shortDir(t)
	runAgent(t, dir, nil)
	req = OpenRequest{URL: "ws://" + fault.Addr(), Host: "box", ConnectTimeout: 5 * time.Second}
	c := echoOnce(t, dir, req)
	_ = c.Close()
	_ = fault.Close()
	return dir, req
}

// onlySession is the status of the agent's one session, and false while
// the agent cannot tell or holds another number of sessions.
func onlySession(dir string) (SessionStatus, bool) {
	st, err := GetStatus(context.Background(), dir)
	if err != nil || len(st.Sessions) != 1 {
		return SessionStatus{}, false
	}
	return st.Sessions[0], true
}

// waitIdle waits until the agent's one session is idle, and returns its
// status then; what says what the wait is for.
func waitIdle(t *testing.T, dir, what string) SessionStatus {
	t.Helper()
	var last SessionStatus
	idle := func() bool {
		var ok bool
		last, ok = onlySession(dir)
		return ok && last.State == StateIdle
	}
	if !testutil.Poll(10*time.Second, idle) {
		t.Fatalf("waiting for %s: %+v", what, last)
	}
	return last
}

// A proxy whose wait runs out on a session still being resumed is told
// so, with why the last attempt failed, not a bare "deadline exceeded".
func TestWaitOnAResumingSessionSaysSo(t *testing.T) {
	dir, req := serverGoneUnderSession(t)
	resuming := func() bool {
		st, ok := onlySession(dir)
		return ok && st.State == StateResuming
	}
	if !testutil.Poll(10*time.Second, resuming) {
		t.Fatal("the session is not being resumed")
	}
	req.ConnectTimeout = 300 * time.Millisecond
	_, err := Open(context.Background(), dir, noStart, req)
	if err == nil || !strings.Contains(err.Error(), "within 300ms: the session is being resumed") {
		t.Fatalf("open: %v, want the wait's end on a resuming session", err)
	}
}

// status tells a resuming session's outage: since when, what cut it,
// and how the last attempt failed (a killed server: refused).
func TestStatusOfAResumingSession(t *testing.T) {
	cut := time.Now()
	dir, _ := serverGoneUnderSession(t)
	var last SessionStatus
	told := func() bool {
		var ok bool
		last, ok = onlySession(dir)
		return ok && last.State == StateResuming && strings.Contains(last.Reason, "; last attempt: ")
	}
	if !testutil.Poll(10*time.Second, told) {
		t.Fatalf("status of the resuming session: %+v", last)
	}
	if !strings.HasPrefix(last.Reason, "the connection was lost: ") || !strings.Contains(last.Reason, "refused") {
		t.Errorf("reason %q: want the cut and the refused attempt", last.Reason)
	}
	if last.ResumingSince.Before(cut.Add(-time.Second)) || last.ResumingSince.After(time.Now()) {
		t.Errorf("resuming since %v, the path was cut at %v", last.ResumingSince, cut)
	}
}

// stopUntilSocketGone starts Stop(ctx, dir), whose result comes on the
// channel, and waits until the agent has let go of its socket.
func stopUntilSocketGone(ctx context.Context, t *testing.T, dir string) <-chan error {
	t.Helper()
	old, err := os.Stat(SocketPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- Stop(ctx, dir) }()
	if !testutil.Poll(5*time.Second, func() bool { cur, err := os.Stat(SocketPath(dir)); return err != nil || !os.SameFile(cur, old) }) {
		t.Fatal("the stopped agent kept its socket")
	}
	return stopped
}

// `agent --stop` while ssh keeps starting (an editor's remote session, a
// script's loop): the next proxy starts the next agent as soon as the
// stopped one closes its listener, and Stop, which waited for the socket
// file to go away, found the new agent's there, waited out its whole
// limit and said the stopped agent was "still closing its sessions",
// though it had exited. It returns once the agent it stopped has.
func TestStopReturnsWhenTheNextAgentServes(t *testing.T) {
	dir, firstDone, fault := servingFrozen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopped := stopUntilSocketGone(ctx, t, dir)
	runAgent(t, dir, nil) // the next proxy's agent
	fault.Thaw()
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v, want nil: the agent it stopped has exited", err)
	}
}

// A second `agent --stop` while the first still waits for the agent to
// close its sessions found no socket and said "no agent was running".
// It is told the agent is already stopping, and can wait for its end.
func TestSecondStopFindsTheAgentStopping(t *testing.T) {
	dir, firstDone, fault := servingFrozen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopped := stopUntilSocketGone(ctx, t, dir)
	if err := Stop(ctx, dir); !errors.Is(err, ErrStopping) {
		t.Fatalf("second stop: %v, want %v", err, ErrStopping)
	}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if err := WaitStopped(short, dir); !errors.Is(err, ErrStopSlow) {
		t.Fatalf("wait while the session's close hangs: %v, want %v", err, ErrStopSlow)
	}
	fault.Thaw()
	if err := WaitStopped(ctx, dir); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-firstDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("WaitStopped returned, but the agent's Serve did not")
	}
	if err := <-stopped; err != nil {
		t.Fatalf("first stop: %v", err)
	}
	if err := Stop(ctx, dir); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("stop once the agent exited: %v, want %v", err, ErrNotRunning)
	}
}
