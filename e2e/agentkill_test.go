//go:build linux

package e2e

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
)

// TestProxyAgentKilledMidStream: the agent killed (-9) under a proxy
// whose pipes it carries ends the stream at once: ssh's stdout reaches
// its end after stream bytes only, and the proxy exits 1 with the one
// line that says the agent died. The next proxy starts a new agent.
func TestProxyAgentKilledMidStream(t *testing.T) {
	t.Parallel()
	// The first connection is a download that lasts as long as it is
	// read; the next ones say hello and end.
	var conns atomic.Int32
	target := testutil.Serve(t, func(c net.Conn) {
		if conns.Add(1) > 1 {
			_, _ = c.Write([]byte("hello\n"))
			return
		}
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	// No grace: the killed agent's session, which nobody resumes, would
	// hold the server's shutdown at the test's end.
	srv := startServer(t, serverOpts{Target: target.Addr, Args: []string{"--resume-grace", "0"}})
	dir := newAgentDir(t)
	ctx := testContext(t, time.Minute)
	args := []string{"proxy", "--url", srv.URL, "--agent-dir", dir, "sandbox"}
	cmd := sandmux(ctx, nil, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	inR, outW, toIn, fromOut := startOnPipes(t, cmd)
	_ = inR.Close()
	_ = outW.Close()
	defer toIn.Close()
	_ = fromOut.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(fromOut, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	pids := agentPIDs(dir)
	if len(pids) != 1 {
		t.Fatalf("agent processes for %s: %v, want one", dir, pids)
	}
	killed := time.Now()
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = fromOut.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(fromOut)
	if err != nil {
		t.Fatalf("ssh's stdout after the agent's kill: %d more bytes, then %v; want its end", len(rest), err)
	}
	if i := bytes.IndexFunc(rest, func(r rune) bool { return r != 0 }); i >= 0 {
		t.Fatalf("ssh's stdout after the agent's kill: byte %d of %d is not the stream's", i, len(rest))
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err = <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy still runs 10s after its agent was killed")
	}
	const want = "sandmux: the sandmux agent exited while the stream was open (killed? see agent.log in the agent's directory); the next proxy or forward starts a new one\n"
	if code := (result{err: err}).exitCode(); code != 1 || stderr.String() != want {
		t.Fatalf("the proxy exited %d (%v) after %v with stderr %q; want 1 and %q", code, err, time.Since(killed).Round(time.Millisecond), stderr.String(), want)
	}
	r := run(sandmux(ctx, nil, args...), "")
	if r.err != nil || r.stdout != "hello\n" || strings.Contains(r.stderr, "sandmux:") {
		t.Fatalf("the next proxy: want \"hello\" through a new agent\n%s", r)
	}
}
