//go:build linux

package e2e

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
)

// TestForwardAgentCarriesTheBytes: through the agent, a forwarded
// connection is handed to the agent, which carries its bytes itself: with
// the forward process stopped (SIGSTOP) once the connection is open, a
// 4 MiB echo still goes through whole, and the connection's end (a
// half-close each way) still arrives.
func TestForwardAgentCarriesTheBytes(t *testing.T) {
	t.Parallel()
	echo := testutil.EchoServer(t).Addr
	srv := startServer(t, serverOpts{Allow: []string{echo}})
	ctx := testContext(t, 2*time.Minute)
	fwd, m := edForward(t, ctx, srv.URL, echo, "agent")
	c := dialEchoed(t, m[1]) // the connection is then the agent's
	if err := fwd.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = fwd.cmd.Process.Signal(syscall.SIGCONT) }()
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(c)
		got <- b
	}()
	if _, err := c.Write(data); err != nil {
		t.Fatalf("write with the forward process stopped: %v", err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("echo with the forward process stopped: %d bytes back of %d or not the same, want all then the end", len(b), len(data))
	}
	_ = fwd.cmd.Process.Signal(syscall.SIGCONT)
	if code := fwd.stop(t); code != 0 {
		t.Errorf("forward exited %d on SIGTERM, want 0; stderr:\n%s", code, fwd.Stderr())
	}
}

// TestForwardAgentKilledResetsLocal: a forwarded connection the agent
// carries is reset, never ended cleanly, when the agent is killed
// mid-download: the kernel closes a dead process's sockets, and a plain
// close would send the local client a FIN after part of the data.
func TestForwardAgentKilledResetsLocal(t *testing.T) {
	t.Parallel()
	target := testutil.SourceServer(t)
	// No grace: the killed agent's session, which nobody resumes, held
	// the server's shutdown at the test's end for 5 s.
	srv := startServer(t, serverOpts{Allow: []string{target.Addr}, Args: []string{"--resume-grace", "0"}})
	ctx := testContext(t, 2*time.Minute)
	dir := newAgentDir(t)
	fwd := edStart(t, ctx, nil, "forward", "-L", "127.0.0.1:0:"+target.Addr, "--url", srv.URL, "--agent-dir", dir, "box")
	m := fwd.waitLine(t, edForwardingLine, 20*time.Second)
	c, err := net.Dial("tcp", m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.ReadFull(c, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	pids := agentPIDs(dir)
	if len(pids) != 1 {
		t.Fatalf("agent processes for %s: %v, want one", dir, pids)
	}
	_ = syscall.Kill(pids[0], syscall.SIGKILL)
	if n, err := io.Copy(io.Discard, c); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the local client read %d more bytes, then %v; want a reset", n, err)
	}
	// The forward says so once, and goes on: its next connection starts
	// a new agent.
	line := regexp.MustCompile(`^sandmux: forward \S+ -> \S+: the sandmux agent exited while the stream was open \(killed\? see agent.log in the agent's directory\); the next proxy or forward starts a new one$`)
	fwd.waitLine(t, line, 10*time.Second)
	next, err := net.Dial("tcp", m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	_ = next.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.ReadFull(next, make([]byte, 1<<20)); err != nil {
		t.Fatalf("the forward's next connection after the agent's kill: %v", err)
	}
	_ = next.Close()
	if code := fwd.stop(t); code != 0 || strings.Count(fwd.Stderr(), "sandmux: forward ") != 1 {
		t.Errorf("forward exited %d on SIGTERM, want 0 and one line for the killed agent's connection; stderr:\n%s", code, fwd.Stderr())
	}
}

// dialEchoed connects to a forward of an echo target at addr and makes one
// round trip through it, so the connection is open end to end. It is
// closed at the test's end; its deadline is a minute away.
func dialEchoed(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
		t.Fatalf("echo through the forward: %v", err)
	}
	return c
}
