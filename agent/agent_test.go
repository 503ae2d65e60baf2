package agent

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
	"github.com/sandmux/sandmux/server"
)

// shortDir is a temp dir short enough for a Unix socket path.
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "smxa")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// runAgent serves an in-process agent in dir until the test ends.
func runAgent(t *testing.T, dir string, mod func(*Config)) {
	t.Helper()
	cfg := DefaultConfig(dir)
	cfg.Persist = 0
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	up := testutil.Poll(5*time.Second, func() bool {
		c, err := connect(context.Background(), dir)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	if !up {
		t.Fatal("agent did not come up")
	}
}

func noStart() error { return errors.New("the test starts its agent itself") }

func TestOpenStreamsShareOneSession(t *testing.T) {
	srv, url := testutil.SandmuxServer(t, nil)
	dir := shortDir(t)
	runAgent(t, dir, nil)

	req := OpenRequest{URL: url, Token: "", Host: "box", ConnectTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Open(context.Background(), dir, noStart, req)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			data := []byte(strings.Repeat(string(rune('a'+i)), 300<<10))
			go func() {
				_, _ = c.Write(data)
				_ = c.(interface{ CloseWrite() error }).CloseWrite()
			}()
			got, err := io.ReadAll(c)
			if err != nil {
				t.Error(err)
				return
			}
			if sha256.Sum256(got) != sha256.Sum256(data) {
				t.Errorf("stream %d: echo differs", i)
			}
		}()
	}
	wg.Wait()
	if n := srv.Stats().Sessions; n != 1 {
		t.Fatalf("server saw %d WebSockets, want 1", n)
	}
	st, err := GetStatus(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Sessions) != 1 || st.Sessions[0].Streams != 8 || st.Sessions[0].State != StateConnected || !st.Sessions[0].Resumable {
		t.Fatalf("status %+v", st.Sessions)
	}
	if err := Stop(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
}

func TestOpenFailsWithTheServersReason(t *testing.T) {
	_, url := testutil.SandmuxServer(t, func(c *server.Config) { c.Token = "right" })
	dir := shortDir(t)
	runAgent(t, dir, nil)
	_, err := Open(context.Background(), dir, noStart, OpenRequest{URL: url, Token: "wrong", ConnectTimeout: 5 * time.Second})
	if want := url + ": 401 Unauthorized (check --token, --token-file or SANDMUX_TOKEN)"; err == nil || err.Error() != want {
		t.Fatalf("open: %v, want %q", err, want)
	}
	// A stream is opened early (its reply is not awaited) once the session
	// is welcomed, so a refused target is the stream's first read error;
	// on a session not welcomed yet the reply is awaited and the refusal
	// is Open's. Both are worded the same.
	const want = "server refused target 10.0.0.1:5432: not allowed (add --allow 10.0.0.1:5432 to `sandmux server` in the sandbox)"
	for range 2 {
		c, err := Open(context.Background(), dir, noStart, OpenRequest{URL: url, Token: "right", Target: "10.0.0.1:5432", ConnectTimeout: 5 * time.Second})
		if err == nil {
			_, err = io.ReadAll(c)
			c.Close()
		}
		if err == nil || err.Error() != want {
			t.Fatalf("open and read: %v, want %q", err, want)
		}
	}
}

func TestConnectTimeoutNamesTheLastError(t *testing.T) {
	url := "ws://" + testutil.FreeAddr(t) // nothing listens: every dial is refused
	dir := shortDir(t)
	runAgent(t, dir, nil)
	_, err := Open(context.Background(), dir, noStart, OpenRequest{URL: url, ConnectTimeout: 500 * time.Millisecond})
	if err == nil || !strings.HasPrefix(err.Error(), "could not connect to "+url+" within 500ms: ") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("open: %v", err)
	}
}

// A session nobody waits for any more is not redialled in a loop: once
// the request that asked for it has given up, the next failed dial
// leaves it idle until another request comes, which dials again.
func TestNoRedialLoopWithoutRequests(t *testing.T) {
	url := "ws://" + testutil.FreeAddr(t) // nothing listens: every dial is refused
	dir := shortDir(t)
	runAgent(t, dir, func(c *Config) {
		c.Backoff = client.Backoff{Min: 20 * time.Millisecond, Max: 50 * time.Millisecond, StableAfter: time.Minute}
	})
	req := OpenRequest{URL: url, Host: "box", ConnectTimeout: 300 * time.Millisecond}
	if _, err := Open(context.Background(), dir, noStart, req); err == nil {
		t.Fatal("opened a stream to a server that is down")
	}
	last := waitIdle(t, dir, "the session to be idle, not dialled with nobody waiting")
	if !strings.Contains(last.Reason, "connection refused") || !strings.HasSuffix(last.Reason, "; reconnects when next used") {
		t.Errorf("reason %q", last.Reason)
	}
	errs := last.DialErrors
	_, err := Open(context.Background(), dir, noStart, req)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("the next request: %v, want its own dial refused", err)
	}
	if st, err := GetStatus(context.Background(), dir); err != nil || st.Sessions[0].DialErrors <= errs {
		t.Fatalf("the next request did not dial again: %+v, %v", st, err)
	}
}

func TestFrames(t *testing.T) {
	a, b, err := unixPair(t)
	if err != nil {
		t.Fatal(err)
	}
	fw := &framedWriter{conn: a}
	fr := newFramedReader(b, false)
	go func() {
		_, _ = fw.Write([]byte("hello "))
		_, _ = fw.Write([]byte("world"))
		fw.finish(errors.New("connection to box lost: session ended"))
	}()
	got, err := io.ReadAll(fr)
	var se *StreamError
	if string(got) != "hello world" || !errors.As(err, &se) || se.Reason != "connection to box lost: session ended" {
		t.Fatalf("read %q, %v", got, err)
	}

	a, b, err = unixPair(t)
	if err != nil {
		t.Fatal(err)
	}
	fw2, fr2 := &framedWriter{conn: a}, newFramedReader(b, false)
	go func() {
		_, _ = fw2.Write([]byte("done"))
		_ = fw2.CloseWrite()
		fw2.finish(nil)
	}()
	if got, err := io.ReadAll(fr2); string(got) != "done" || err != nil {
		t.Fatalf("clean end: %q, %v", got, err)
	}

	a, b, err = unixPair(t)
	if err != nil {
		t.Fatal(err)
	}
	_ = a.Close() // the agent died without a word
	if _, err := io.ReadAll(newFramedReader(b, false)); !errors.As(err, &se) || !strings.Contains(se.Reason, "agent exited") {
		t.Fatalf("killed agent: %v", err)
	}
}

// A proxy still writing when the agent cuts its stream (a refused forward
// whose local client sends first) gets the agent's reason from Write too,
// not the broken pipe the agent's stop of reading causes before the
// reason is sent.
func TestFramesCutWhileWriting(t *testing.T) {
	a, b, err := unixPair(t)
	if err != nil {
		t.Fatal(err)
	}
	fw, fr := &framedWriter{conn: a}, newFramedReader(b, false)
	_ = fw.Close() // the agent stops reading, as its splice does on a cut
	read := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, fr)
		read <- err
	}()
	wrote := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := fr.Write(buf); err != nil {
				wrote <- err
				return
			}
		}
	}()
	const reason = "127.0.0.1:9 is not allowed by the server"
	fw.finish(errors.New(reason))
	var se *StreamError
	if err := <-wrote; !errors.As(err, &se) || se.Reason != reason {
		t.Errorf("write: %v, want the agent's reason", err)
	}
	if err := <-read; !errors.As(err, &se) || se.Reason != reason {
		t.Errorf("read: %v, want the agent's reason", err)
	}
}

// An agent killed while the proxy's bytes wait unread resets the
// connection: the proxy reads that, as a clean close, as the agent gone,
// not as the tunnel's failure.
func TestFramesAgentKilled(t *testing.T) {
	for _, unread := range []bool{false, true} {
		a, b, err := unixPair(t)
		if err != nil {
			t.Fatal(err)
		}
		fr := newFramedReader(b, false)
		kind := byte(frameData)
		if unread {
			kind = frameError // an error frame without its reason
		}
		if _, err := a.Write(frameHeader(kind, 10)); err != nil { // a frame cut short
			t.Fatal(err)
		}
		if unread {
			if _, err := fr.Write([]byte("never read")); err != nil {
				t.Fatal(err)
			}
		}
		_ = a.Close()
		var se *StreamError
		if _, err := io.Copy(io.Discard, fr); !errors.As(err, &se) || se.Reason != errAgentGone {
			t.Errorf("bytes unread by the agent %v: read %v, want the agent gone", unread, err)
		}
	}
}

func unixPair(t *testing.T) (*net.UnixConn, *net.UnixConn, error) {
	t.Helper()
	path := filepath.Join(shortDir(t), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	a, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, nil, err
	}
	b, err := ln.AcceptUnix()
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return a, b, nil
}

func TestLogFileRotates(t *testing.T) {
	path := filepath.Join(shortDir(t), LogName)
	l, err := OpenLogFile(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	line := []byte(strings.Repeat("x", 39) + "\n")
	for range 5 {
		if _, err := l.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	cur, _ := os.Stat(path)
	old, err := os.Stat(path + ".1")
	if err != nil || cur.Size() > 100 || old.Size() > 100 {
		t.Fatalf("sizes after rotation: current %v, rotated %v (%v)", cur.Size(), old, err)
	}
	if cur.Mode().Perm() != 0o600 {
		t.Fatalf("log mode %v, want 0600", cur.Mode().Perm())
	}
}

func TestEnsureDir(t *testing.T) {
	base := shortDir(t)
	dir := filepath.Join(base, "a", "sandmux")
	if err := EnsureDir(dir); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode %v, want 0700", fi.Mode().Perm())
	}
	_ = os.Chmod(dir, 0o777)
	if err := EnsureDir(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("a loosened dir was not tightened: %v", fi.Mode().Perm())
	}
	// One that others can enter and that holds files of its own is the
	// user's, not the agent's to change.
	_ = os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o600)
	_ = os.Chmod(dir, 0o755)
	if err := EnsureDir(dir); !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), "holds files") {
		t.Fatalf("a shared directory with files: %v", err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o755 {
		t.Fatalf("a shared directory with files was changed to %v", fi.Mode().Perm())
	}
	// An agent directory of the user's own loosened by hand (a dotfiles
	// sync, a restored backup) stops every proxy: the line says how to
	// make it private, in the mode's usual spelling.
	if err := EnsureDir(dir); err == nil || !strings.Contains(err.Error(), "mode 0755") || !strings.Contains(err.Error(), "chmod 700 "+dir) {
		t.Fatalf("a shared directory with files: %v, want its mode as 0755 and `chmod 700 %s`", err, dir)
	}
	file := filepath.Join(base, "file")
	_ = os.WriteFile(file, nil, 0o600)
	if err := EnsureDir(file); !errors.Is(err, ErrUnsafeDir) && err == nil {
		t.Fatalf("a file accepted as the agent dir: %v", err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	// One fix, the directory to name: "give the directory it points to;
	// set --agent-dir to a short private directory of yours" said two.
	realDir, _ := filepath.EvalSymlinks(dir)
	if err := EnsureDir(link); !errors.Is(err, ErrUnsafeDir) || !strings.HasSuffix(err.Error(), link+" is a symbolic link: set --agent-dir to the directory itself, "+realDir+", or use --no-agent") {
		t.Fatalf("a symbolic link as the agent dir: %v, want it to name %s", err, realDir)
	}
	if got := DefaultDir("/run/user/1000", "/home/u"); got != "/run/user/1000/sandmux" {
		t.Fatal(got)
	}
	if got := DefaultDir("", "/home/u"); got != "/home/u/.cache/sandmux" {
		t.Fatal(got)
	}
}

func TestSessionKeySeparatesCredentials(t *testing.T) {
	a, err := New(DefaultConfig(shortDir(t)))
	if err != nil {
		t.Fatal(err)
	}
	entry := func(r OpenRequest) *entry {
		t.Helper()
		e, err := a.entryFor(&r)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	base := OpenRequest{URL: "wss://x", Token: "a", Header: map[string][]string{"E2b-Traffic-Access-Token": {"t"}}}
	same := base
	same.Host, same.Target = "other", "db:5432" // neither changes what the server sees
	if entry(base) != entry(same) {
		t.Fatal("host or target split a session")
	}
	// A proxy that states the agent's own resumption settings shares the
	// session of one (older) that states none.
	same.Resume = &ResumeOptions{Timeout: DefaultConfig("").ResumeTimeout}
	if entry(base) != entry(same) {
		t.Fatal("the default resumption settings, stated, split a session")
	}
	for _, mod := range []func(*OpenRequest){
		func(r *OpenRequest) { r.URL = "wss://y" },
		func(r *OpenRequest) { r.Token = "b" },
		func(r *OpenRequest) { r.Header = map[string][]string{"E2b-Traffic-Access-Token": {"u"}} },
		func(r *OpenRequest) { r.Insecure = true },
		func(r *OpenRequest) { r.Resume = &ResumeOptions{Off: true} },
		func(r *OpenRequest) { r.Resume = &ResumeOptions{Timeout: time.Minute} },
	} {
		r := base
		mod(&r)
		if entry(r) == entry(base) {
			t.Fatalf("%+v shares a session with %+v", r, base)
		}
	}
	if e := entry(OpenRequest{URL: "wss://x", Resume: &ResumeOptions{Off: true}}); !e.cfg.NoResume {
		t.Fatal("a proxy's --no-resume did not reach its session")
	}
}

// `sandmux proxy ABC` and ssh's %h for it, which OpenSSH lowercases
// (`ssh ABC` passes abc), got two sessions to one sandbox: host names
// are compared in any case. A path, a query or an IPv6 zone may tell
// sandboxes apart by case, and still does.
func TestSessionKeyIgnoresHostCase(t *testing.T) {
	a, err := New(DefaultConfig(shortDir(t)))
	if err != nil {
		t.Fatal(err)
	}
	entry := func(url string) *entry {
		t.Helper()
		e, err := a.entryFor(&OpenRequest{URL: url, Token: "t"})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	for _, same := range [][2]string{
		{"wss://8081-ABC.e2b.app", "wss://8081-abc.e2b.app"},
		{"WSS://Box.Example:8443/ws?id=X", "wss://box.example:8443/ws?id=X"},
		{"ws://[::FFFF:7F00:1]:8081", "ws://[::ffff:7f00:1]:8081"},
	} {
		if entry(same[0]) != entry(same[1]) {
			t.Errorf("%s and %s: two sessions, want one", same[0], same[1])
		}
	}
	for _, apart := range [][2]string{
		{"wss://gw.example/sandbox/ABC", "wss://gw.example/sandbox/abc"},
		{"wss://gw.example/?id=ABC", "wss://gw.example/?id=abc"},
		{"ws://[fe80::1%25ETH0]:8081", "ws://[fe80::1%25eth0]:8081"},
	} {
		if entry(apart[0]) == entry(apart[1]) {
			t.Errorf("%s and %s share a session", apart[0], apart[1])
		}
	}
}

// Through the agent, the streams of both spellings of a host share one
// WebSocket.
func TestHostCaseSharesOneWebSocket(t *testing.T) {
	srv, url := testutil.SandmuxServer(t, nil)
	port := url[strings.LastIndexByte(url, ':'):]
	dir := shortDir(t)
	runAgent(t, dir, nil)
	for _, host := range []string{"[::FFFF:7F00:1]", "[::ffff:7f00:1]"} {
		c := echoOnce(t, dir, OpenRequest{URL: "ws://" + host + port, Host: "box", ConnectTimeout: 5 * time.Second})
		defer c.Close()
	}
	if n := srv.Stats().Sessions; n != 1 {
		t.Fatalf("server saw %d WebSockets, want 1", n)
	}
}

// A session the server closes on purpose (its idle timeout) is not
// redialled until it is needed: redialling at once would only have the
// server close another every few seconds for as long as the agent stays.
func TestSessionClosedByServerRedialsOnlyWhenUsed(t *testing.T) {
	t.Run("resumable", func(t *testing.T) { testClosedByServer(t, false) })
	// A v1 session ends with the WebSocket's close frame, not END.
	t.Run("no-resume", func(t *testing.T) { testClosedByServer(t, true) })
}

func testClosedByServer(t *testing.T, noResume bool) {
	srv, url := testutil.SandmuxServer(t, func(c *server.Config) { c.IdleTimeout = 200 * time.Millisecond })
	dir := shortDir(t)
	runAgent(t, dir, nil)
	req := OpenRequest{URL: url, Host: "box", ConnectTimeout: 5 * time.Second, Resume: &ResumeOptions{Off: noResume}}
	echo := func() {
		t.Helper()
		c, err := Open(context.Background(), dir, noStart, req)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
			t.Fatalf("echo %q, %v", got, err)
		}
	}
	state := func() SessionStatus {
		t.Helper()
		st, err := GetStatus(context.Background(), dir)
		if err != nil || len(st.Sessions) != 1 {
			t.Fatalf("status %+v, %v", st, err)
		}
		return st.Sessions[0]
	}

	echo()
	if !testutil.Poll(10*time.Second, func() bool { return state().State == StateIdle }) {
		t.Fatalf("session %+v: want %q once the server closed it", state(), StateIdle)
	}
	// Idle is set as the session's maintainer exits, so nothing redials
	// from here until the next request.
	if n := srv.Stats().Sessions; n != 1 {
		t.Fatalf("server saw %d WebSockets before the next request, want 1", n)
	}
	echo()
	if n := srv.Stats().Sessions; n != 2 {
		t.Fatalf("server saw %d WebSockets after the next request, want 2", n)
	}
}

// A proxy that arrives while the agent waits out a long backoff (the
// server was down) gets its session as soon as the server is back, not at
// the end of the backoff.
func TestRequestCutsBackoffShort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // down, for now
	dir := shortDir(t)
	runAgent(t, dir, func(c *Config) {
		c.Backoff = client.Backoff{Min: time.Minute, Max: time.Minute, StableAfter: time.Minute}
	})
	req := OpenRequest{URL: "ws://" + addr, Host: "box", ConnectTimeout: 300 * time.Millisecond}
	if _, err := Open(context.Background(), dir, noStart, req); err == nil {
		t.Fatal("opened a stream to a server that is down")
	}
	// The maintainer now waits a minute before its next dial.

	cfg := server.DefaultConfig()
	cfg.Target = testutil.EchoServer(t).Addr
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() { defer close(served); _ = hs.Serve(ln) }()
	defer func() { _ = srv.Close(); _ = hs.Close(); <-served }()

	req.ConnectTimeout = 10 * time.Second
	start := time.Now()
	c, err := Open(context.Background(), dir, noStart, req)
	if err != nil {
		t.Fatalf("open once the server was back: %v (after %v)", err, time.Since(start))
	}
	_ = c.Close()
	t.Logf("session up %v after the request", time.Since(start).Round(time.Millisecond))
}

// A session at the stream limit of a server that does not say its limit
// (one older than mux.MaxStreamsHeader) refuses the next stream with a
// line saying to run the command again, and the next proxy's stream gets
// a WebSocket of its own, as ssh does when its ControlMaster refuses a
// session; a forward's does not (the limit is the server's to keep), and
// once the session has room again, streams share it.
func TestStreamLimitOverflowsToOwnSession(t *testing.T) {
	srv, url := unsaidLimitServer(t, 2)
	dir := shortDir(t)
	runAgent(t, dir, nil)
	proxy := OpenRequest{URL: url, Host: "box", ConnectTimeout: 5 * time.Second, Overflow: true}
	forward := proxy
	forward.Overflow = false
	open := func(req OpenRequest, msg string) (net.Conn, error) { return echoVia(dir, req, msg) }
	var held []net.Conn
	for i := range 2 {
		c, err := open(forward, fmt.Sprint("held ", i))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	const limit = "server at its stream limit (2); close some connections to it or raise --max-streams"
	_, err := open(proxy, "one too many")
	if want := limit + "; run the command again: while the session to box is this full, the agent gives it a WebSocket of its own"; err == nil || err.Error() != want {
		t.Fatalf("third stream: %v\nwant %q", err, want)
	}
	if _, err := open(forward, "a forward's"); err == nil || err.Error() != limit {
		t.Fatalf("a forward's stream past the limit: %v\nwant %q", err, limit)
	}
	own, err := open(proxy, "again")
	if err != nil {
		t.Fatalf("the proxy's stream after the refusal: %v", err)
	}
	if n := srv.Stats().Sessions; n != 2 {
		t.Fatalf("server saw %d WebSockets, want 2: the shared one and one of the stream's own", n)
	}
	own.Close()
	for _, c := range held {
		c.Close()
	}
	if !testutil.Poll(10*time.Second, func() bool { return srv.Stats().ActiveStreams == 0 }) {
		t.Fatal("streams still open on the server")
	}
	c, err := open(proxy, "room again")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n := srv.Stats().Sessions; n != 2 {
		t.Fatalf("server saw %d WebSockets, want still 2: with room again the stream shares the session", n)
	}
}

// The agent's stop ends a stream on a WebSocket of its own (a raw
// server's, a full session's) at once, as it ends shared ones: it waited
// for the stream to end by itself.
func TestStopEndsOwnSessions(t *testing.T) {
	srv, url := testutil.SandmuxServer(t, func(c *server.Config) { c.MaxStreams = 1 })
	dir := shortDir(t)
	runAgent(t, dir, nil)
	req := OpenRequest{URL: url, Host: "box", ConnectTimeout: 5 * time.Second, Overflow: true}
	var conns []net.Conn
	for range 3 { // the shared stream, then two of their own
		if c, err := echoVia(dir, req, "x"); err == nil {
			defer c.Close()
			conns = append(conns, c)
		}
	}
	if len(conns) != 3 || srv.Stats().Sessions != 3 {
		t.Fatalf("%d streams up on %d WebSockets, want 3 on 3", len(conns), srv.Stats().Sessions)
	}
	if err := Stop(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		_, err := io.ReadAll(c)
		if err == nil || !strings.Contains(err.Error(), errShuttingDown) {
			t.Errorf("stream %d after the agent's stop: %v, want %q", i, err, errShuttingDown)
		}
	}
}

// A connection closed before any request (a proxy, or a starting agent,
// checking that this one answers) is not logged as a bad request, which
// every agent start logged; a cut-off request still is.
func TestProbeIsNotABadRequest(t *testing.T) {
	dir := shortDir(t)
	logs := &testutil.Buffer{}
	runAgent(t, dir, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	for range 3 {
		c, err := connect(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
	}
	c, err := connect(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte{0, 0}) // half a length prefix
	_ = c.Close()
	if err := Stop(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CountLines(logs.String(), `msg="bad request on agent socket"`); n != 1 {
		t.Fatalf("%d bad-request lines, want 1 (the cut-off request, not the probes):\n%s", n, logs.String())
	}
}

// On a session that carries many streams, a proxy's stream waits for the
// server's reply, so that a refusal for the stream limit comes before any
// of its bytes went out, and the agent gives it a WebSocket of its own at
// once: the ssh does not fail first.
func TestCrowdedSessionOverflowsWithoutFailing(t *testing.T) {
	const limit = crowdedStreams + 2
	srv, url := testutil.SandmuxServer(t, func(c *server.Config) { c.MaxStreams = limit })
	dir := shortDir(t)
	runAgent(t, dir, nil)
	echoOnce := func(req OpenRequest) error {
		c, err := echoVia(dir, req, "x")
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		return err
	}
	forward := OpenRequest{URL: url, Host: "box", ConnectTimeout: 5 * time.Second}
	for i := range limit {
		if err := echoOnce(forward); err != nil {
			t.Fatalf("forward stream %d: %v", i, err)
		}
	}
	proxy := forward
	proxy.Overflow = true
	if err := echoOnce(proxy); err != nil {
		t.Fatalf("a proxy's stream on the full, crowded session: %v", err)
	}
	if n := srv.Stats().Sessions; n != 2 {
		t.Fatalf("server saw %d WebSockets, want 2: the shared one and the proxy's own", n)
	}
}

// With the server's --max-streams under crowdedStreams (4), the first ssh
// past the limit failed ("run the command again"): its stream was opened
// early, and the refusal came after ssh's first bytes had gone. The
// server says its limit, and from half of it on a proxy's stream waits
// for the reply: every proxy past the limit gets a WebSocket of its own.
func TestLowStreamLimitOverflowsWithoutFailing(t *testing.T) {
	const limit = 4
	srv, url := testutil.SandmuxServer(t, func(c *server.Config) { c.MaxStreams = limit })
	dir := shortDir(t)
	runAgent(t, dir, nil)
	proxy := OpenRequest{URL: url, Host: "box", ConnectTimeout: 5 * time.Second, Overflow: true}
	for i := range limit + 2 {
		c, err := echoVia(dir, proxy, fmt.Sprint("proxy ", i))
		if err != nil {
			t.Fatalf("proxy %d of %d on a server that carries %d: %v", i+1, limit+2, limit, err)
		}
		defer c.Close()
	}
	if n := srv.Stats().Sessions; n != 3 {
		t.Fatalf("server saw %d WebSockets, want 3: the shared one and two of their own", n)
	}
}

// unsaidLimitServer is a sandmux server with the stream limit limit that
// does not say it (mux.MaxStreamsHeader), as one older than the header,
// or behind an edge that drops it.
func unsaidLimitServer(t *testing.T, limit int) (*server.Server, string) {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Target = testutil.EchoServer(t).Addr
	cfg.MaxStreams = limit
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(unsaidLimit{w}, r)
	}))
	t.Cleanup(func() {
		hs.CloseClientConnections()
		_ = srv.Close()
		hs.Close()
	})
	return srv, "ws://" + hs.Listener.Addr().String()
}

// unsaidLimit drops mux.MaxStreamsHeader from the upgrade's answer.
type unsaidLimit struct{ http.ResponseWriter }

func (w unsaidLimit) WriteHeader(code int) {
	w.Header().Del(mux.MaxStreamsHeader)
	w.ResponseWriter.WriteHeader(code)
}

func (w unsaidLimit) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// echoVia opens a stream through the agent in dir and has msg echoed on
// it; it returns the open stream, or why it failed (closed then).
func echoVia(dir string, req OpenRequest, msg string) (net.Conn, error) {
	c, err := Open(context.Background(), dir, noStart, req)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		// A refusal may close the connection before the write: its
		// reason is what is left to read.
		if _, rerr := io.ReadAll(c); rerr != nil {
			err = rerr
		}
		c.Close()
		return nil, err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		c.Close()
		return nil, err
	}
	if string(got) != msg {
		c.Close()
		return nil, fmt.Errorf("echo %q, want %q", got, msg)
	}
	return c, nil
}

// A token with a line end is refused at once with what is wrong, not
// dialled as an outage until ConnectTimeout and blamed on the network.
func TestOpenRefusesTokenWithLineEnd(t *testing.T) {
	_, url := testutil.SandmuxServer(t, func(c *server.Config) { c.Token = "right" })
	dir := shortDir(t)
	runAgent(t, dir, nil)
	_, err := Open(context.Background(), dir, noStart, OpenRequest{URL: url, Token: "right\r", ConnectTimeout: 20 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "the token has a control character") {
		t.Fatalf("open: %v, want the token refused", err)
	}
}
