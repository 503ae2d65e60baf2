//go:build linux

package e2e

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/sshtest"
)

// TestProxyUseFdpassResumes: an ssh with ProxyUseFdpass, whose stream the
// agent carries on the socket it passed ssh with no sandmux process
// beside the ssh, lives through cuts of the WebSocket as a proxy's
// stream does: an scp upload across one cut and the download back across
// another are byte-exact, on one session, with nothing said on ssh's
// stderr, and the agent is left with the descriptors it had.
func TestProxyUseFdpassResumes(t *testing.T) {
	t.Parallel()
	rg := newResumeRig(t, rigOpts{programs: []string{"scp"}})
	ctx := testContext(t, 2*time.Minute)
	const size = 8 << 20
	client := fdpassClient{rg.sshd}
	proxy := proxyCommand("ws://"+rg.path.Addr(), rg.dir, "--fdpass")
	local := t.TempDir()
	src := filepath.Join(local, "up.bin")
	want := sshtest.RandomFile(t, src, size)
	remote := filepath.Join(rg.sshd.Dir, "remote.bin")
	back := filepath.Join(local, "back.bin")
	pid, fds := 0, 0
	for i, step := range []struct{ name, from, to, file string }{
		{"upload", src, "sandbox:" + remote, remote},
		{"download", "sandbox:" + remote, back, back},
	} {
		cmd := client.Command(ctx, t, "scp", proxy, "-q", step.from, step.to)
		cmd.Env = childEnv(rg.env...)
		res, done := runAsync(cmd)
		rg.cutAt(t, done, []string{step.file}, cutPoint{at: size / 2})
		if r := <-res; r.err != nil || r.stderr != "" {
			t.Fatalf("scp %s with ProxyUseFdpass across a cut: want success, nothing said\n%s", step.name, r)
		}
		if i == 0 {
			pid, fds = rg.settledAgent(t)
		}
	}
	if got := sshtest.FileSHA256(t, remote); got != want {
		t.Fatalf("uploaded file sha256 %s, want %s", got, want)
	}
	if got := sshtest.FileSHA256(t, back); got != want {
		t.Fatalf("downloaded file sha256 %s, want %s", got, want)
	}
	if s := rg.session(t); s.Resumes < 2 || s.Connects != 1 {
		t.Errorf("session %+v: want resumes >= 2 on 1 connect", s)
	}
	rg.settledAgent(t)
	checkFDs(t, pid, fds)
}
