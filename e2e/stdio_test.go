//go:build linux

package e2e

import (
	"io"
	"os"
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
	for _, mode := range []string{"no-agent", "agent"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			args := []string{"proxy", "--url", srv.URL, "--no-agent"}
			if mode == "agent" {
				args = []string{"proxy", "--url", srv.URL, "--agent-dir", newAgentDir(t)}
			}
			ctx := testContext(t, time.Minute)
			cmd := sandmux(ctx, nil, append(args, "sandbox")...)
			// The proxy's ends are blocking, as ssh or a shell makes
			// them, and the test keeps its own descriptors of them, as
			// the shell running a script does.
			inR, inW := blockingPipe(t)
			outR, outW := blockingPipe(t)
			// The test's own ends are polled, for deadlines: each is an
			// open file of its own, whose mode does not touch the proxy's.
			toIn, fromOut := nonblocking(t, inW), nonblocking(t, outR)
			defer toIn.Close()
			defer fromOut.Close()
			cmd.Stdin, cmd.Stdout = inR, outW
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
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
