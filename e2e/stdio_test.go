//go:build linux

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestProxyRestoresBlocking: a proxy, or the agent it hands its stdio
// to, puts stdin and stdout in non-blocking mode to poll them, and must
// put them back before the proxy exits: the mode belongs to the pipe, so
// a script's next command reading the same stdin would get EAGAIN.
func TestProxyRestoresBlocking(t *testing.T) {
	t.Parallel()
	echo := testutil.EchoServer(t)
	srv := startServer(t, serverOpts{Target: echo.Addr})
	eachProxyMode(t, srv.URL, func(t *testing.T, ctx context.Context, cmd *exec.Cmd) {
		// The test keeps its own descriptors of the proxy's ends, as
		// the shell running a script does.
		inR, outW, toIn, fromOut := startOnPipes(t, cmd)
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()

		if _, err := toIn.Write([]byte("hello\n")); err != nil {
			t.Fatal(err)
		}
		_ = fromOut.SetReadDeadline(time.Now().Add(30 * time.Second))
		got := make([]byte, 6)
		if _, err := io.ReadFull(fromOut, got); err != nil || string(got) != "hello\n" {
			t.Fatalf("echo through the proxy: %q, %v", got, err)
		}
		if !isNonblocking(t, inR) || !isNonblocking(t, outW) {
			t.Fatal("stdin and stdout are blocking while the stream is open: the test proves nothing")
		}
		_ = toIn.Close() // EOF: the stream ends
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("proxy: %v", err)
			}
		case <-ctx.Done():
			t.Fatal("the proxy did not exit after its stdin's EOF")
		}
		if isNonblocking(t, inR) || isNonblocking(t, outW) {
			t.Errorf("after the proxy exited, stdin non-blocking %v, stdout %v: want both blocking again",
				isNonblocking(t, inR), isNonblocking(t, outW))
		}
	})
}

// TestProxyPassesEOFWithStdinOpen: a target that closes first (sshd
// killed or restarted) must end the proxy's stdout at once, though ssh
// still holds stdin open: ssh only learns that the connection is gone from
// that EOF. A descriptor kept to restore stdout's mode must not hold its
// write end open.
func TestProxyPassesEOFWithStdinOpen(t *testing.T) {
	t.Parallel()
	bye := testutil.Serve(t, func(c net.Conn) {
		_, _ = c.Write([]byte("bye\n"))
		_ = c.Close()
	})
	srv := startServer(t, serverOpts{Target: bye.Addr})
	eachProxyMode(t, srv.URL, func(t *testing.T, ctx context.Context, cmd *exec.Cmd) {
		inR, outW, toIn, fromOut := startOnPipes(t, cmd)
		// Only the proxy holds its ends now, as under ssh.
		_ = inR.Close()
		_ = outW.Close()
		defer func() {
			_ = toIn.Close()
			_ = cmd.Wait()
		}()
		_ = fromOut.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(fromOut)
		if err != nil || string(got) != "bye\n" {
			t.Fatalf("stdout: %q, %v; want \"bye\\n\" then EOF while stdin is still open", got, err)
		}
	})
}

// TestProxySameSocketStdio: stdin and stdout one socket, as socat's EXEC
// and inetd give them. A download larger than the socket's buffer, read
// only once the buffer is full, arrives whole on both paths (--no-agent
// used to fail its first write to a full socket with EAGAIN).
func TestProxySameSocketStdio(t *testing.T) {
	t.Parallel()
	const size = 8 << 20
	src := testutil.Serve(t, func(c net.Conn) {
		_, _ = c.Write(make([]byte, size))
	})
	srv := startServer(t, serverOpts{Target: src.Addr})
	eachProxyMode(t, srv.URL, func(t *testing.T, ctx context.Context, cmd *exec.Cmd) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		theirs := os.NewFile(uintptr(fds[1]), "theirs")
		var stderr strings.Builder
		cmd.Stdin, cmd.Stdout, cmd.Stderr = theirs, theirs, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		_ = theirs.Close()
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		// Read nothing until the socket's buffer is full (or the
		// proxy has given up).
		testutil.Poll(30*time.Second, func() bool {
			n, err := unix.IoctlGetInt(fds[0], unix.SIOCINQ)
			return (err == nil && n >= 128<<10) || len(exited) > 0
		})
		mine, err := net.FileConn(os.NewFile(uintptr(fds[0]), "mine"))
		if err != nil {
			t.Fatal(err)
		}
		defer mine.Close()
		_ = mine.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := io.Copy(io.Discard, mine)
		_ = mine.(*net.UnixConn).CloseWrite()
		var werr error
		select {
		case werr = <-exited:
		case <-ctx.Done():
			werr = ctx.Err()
		}
		if n != size || err != nil || werr != nil {
			t.Fatalf("got %d of %d bytes (%v); proxy: %v %s", n, size, err, werr, stderr.String())
		}
	})
}

// eachProxyMode runs f as a parallel subtest for `sandmux proxy` to url
// with --no-agent and through an agent of the test's own; cmd is the
// proxy, not started.
func eachProxyMode(t *testing.T, url string, f func(t *testing.T, ctx context.Context, cmd *exec.Cmd)) {
	for _, mode := range []string{"no-agent", "agent"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, time.Minute)
			f(t, ctx, sandmux(ctx, nil, proxyArgs(t, url, mode)...))
		})
	}
}

// proxyArgs are the arguments of `sandmux proxy` to url in mode
// ("no-agent" or "agent", with an agent of the test's own).
func proxyArgs(t *testing.T, url, mode string) []string {
	if mode == "agent" {
		return []string{"proxy", "--url", url, "--agent-dir", newAgentDir(t), "sandbox"}
	}
	return []string{"proxy", "--url", url, "--no-agent", "sandbox"}
}

// startOnPipes starts cmd with two pipes as stdin and stdout whose ends
// are blocking, as ssh or a shell makes them, and returns those ends (the
// test's to close, or keep) and the test's own: toIn and fromOut, polled
// for deadlines, each an open file of its own whose mode does not touch
// the proxy's. All four are closed when the test ends.
func startOnPipes(t *testing.T, cmd *exec.Cmd) (inR, outW, toIn, fromOut *os.File) {
	t.Helper()
	inR, inW := blockingPipe(t)
	outR, outW := blockingPipe(t)
	toIn, fromOut = nonblocking(t, inW), nonblocking(t, outR)
	t.Cleanup(func() {
		_ = toIn.Close()
		_ = fromOut.Close()
	})
	cmd.Stdin, cmd.Stdout = inR, outW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return inR, outW, toIn, fromOut
}

// blockingPipe is pipe(2) as ssh and shells call it: both ends blocking.
func blockingPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, w = os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
	t.Cleanup(func() {
		_ = r.Close()
		_ = w.Close()
	})
	return r, w
}

// isNonblocking reports whether f's open file is in non-blocking mode.
func isNonblocking(t *testing.T, f *os.File) bool {
	t.Helper()
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fl&unix.O_NONBLOCK != 0
}

// TestProxyInterruptedResetsTarget: a proxy interrupted mid-upload (here a
// program piping into it, not ssh) resets its stream, so the target reads
// a reset after the part that came, never a clean end: with --no-agent,
// --raw and through the agent.
func TestProxyInterruptedResetsTarget(t *testing.T) {
	t.Parallel()
	// The target says when the upload has reached it: interrupted before,
	// the stream could be gone before the server connects the target, and
	// the target would see nothing at all, which is no cut either.
	arrived := make(chan struct{}, 1)
	drained := make(chan testutil.Drained, 1)
	target := testutil.Serve(t, func(c net.Conn) {
		var first [1]byte
		if _, err := io.ReadFull(c, first[:]); err != nil {
			drained <- testutil.Drained{Err: err}
			return
		}
		arrived <- struct{}{}
		n, err := io.Copy(io.Discard, c)
		drained <- testutil.Drained{N: n + 1, Err: err}
	})
	srv := startServer(t, serverOpts{Target: target.Addr})
	for _, mode := range []string{"no-agent", "raw", "agent"} {
		ctx := testContext(t, time.Minute)
		args := proxyArgs(t, srv.URL, mode)
		if mode == "raw" {
			args = []string{"proxy", "--url", srv.URL, "--raw", "sandbox"}
		}
		cmd := sandmux(ctx, nil, args...)
		inR, outW, toIn, _ := startOnPipes(t, cmd)
		_ = inR.Close()
		_ = outW.Close()
		_ = toIn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := toIn.Write(make([]byte, 256<<10)); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		select {
		case <-arrived:
		case <-ctx.Done():
			t.Fatalf("%s: the upload never reached the target", mode)
		}
		_ = cmd.Process.Signal(syscall.SIGINT)
		t.Logf("%s: interrupted", mode)
		d := testutil.AwaitDrained(t, drained)
		if !errors.Is(d.Err, syscall.ECONNRESET) {
			t.Errorf("%s: the target read %d bytes, then %v; want a reset", mode, d.N, d.Err)
		}
		_ = toIn.Close()
		_ = cmd.Wait()
	}
}

// TestProxyInterruptedWhileWaiting: Ctrl-C (SIGINT) or SIGTERM on a
// proxy still waiting for its session (the sandbox's server not up yet)
// ends it with "sandmux: interrupted", as mid-stream, not with Go's
// "context canceled".
func TestProxyInterruptedWhileWaiting(t *testing.T) {
	t.Parallel()
	url := "ws://127.0.0.1:" + strconv.Itoa(testutil.FreePort(t)) // nothing listens
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		// An agent for each round: one kept from the round before has
		// failed dials, and still counts that round's request, before
		// this round's proxy has even asked it.
		dir := newAgentDir(t)
		ctx := testContext(t, time.Minute)
		cmd := sandmux(ctx, nil, "proxy", "--url", url, "--agent-dir", dir, "sandbox")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		inR, outW, _, _ := startOnPipes(t, cmd)
		_ = inR.Close()
		_ = outW.Close()
		waitFor(t, 30*time.Second, "the proxy to wait on a failing dial", func() (bool, string) {
			st, err := readStatus(dir)
			if err != nil || len(st.Sessions) == 0 {
				return false, fmt.Sprint(err)
			}
			return st.Sessions[0].DialErrors > 0, fmt.Sprintf("%+v", st.Sessions[0])
		})
		_ = cmd.Process.Signal(sig)
		err := cmd.Wait()
		if got := stderr.String(); got != "sandmux: interrupted\n" || err == nil {
			t.Errorf("%v: exit %v, stderr %q; want a failure and \"sandmux: interrupted\"", sig, err, got)
		}
	}
}

// TestProxyTargetResetLine: a target that resets its connection is told
// as that, in one line, not as the connection to the sandbox lost; with
// --no-agent and through the agent.
func TestProxyTargetResetLine(t *testing.T) {
	t.Parallel()
	target := testutil.ResettingServer(t, 64<<10).Addr
	srv := startServer(t, serverOpts{Target: target})
	for _, mode := range []string{"no-agent", "agent"} {
		ctx := testContext(t, time.Minute)
		r := run(sandmux(ctx, nil, proxyArgs(t, srv.URL, mode)...), "x")
		const want = "sandmux: sandbox: the server reset the stream: the connection inside the sandbox failed\n"
		// (The target's reset may throw away what it had not sent yet.)
		if r.exitCode() != 1 || len(r.stdout) > 64<<10 || r.stderr != want {
			t.Errorf("%s: want exit 1, at most 64 KiB and stderr %q\n%s", mode, want, r)
		}
	}
}
