package sshtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain checks that servers and clients leave no goroutines behind, since
// every later end-to-end package builds on this harness.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testTimeout = 2 * time.Minute

// run executes cmd and fails the test with both output streams on error,
// because ssh's stderr is the only explanation of a failed connection.
func run(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s failed: %v\nstdout:\n%s\nstderr:\n%s", cmd.Path, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func TestSSHEcho(t *testing.T) {
	t.Parallel()
	s := Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	out := run(t, s.Command(ctx, t, "ssh", "", "127.0.0.1", "echo", "hello"))
	if got := strings.TrimSpace(out); got != "hello" {
		t.Fatalf("ssh echo output = %q, want %q", got, "hello")
	}
}

func TestSCPRoundTrip(t *testing.T) {
	t.Parallel()
	s := Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	local := t.TempDir()
	up := filepath.Join(local, "up.bin")
	want := RandomFile(t, up, 1<<20)
	remote := filepath.Join(s.Dir, "remote.bin")

	run(t, s.Command(ctx, t, "scp", "", up, "127.0.0.1:"+remote))
	if got := FileSHA256(t, remote); got != want {
		t.Fatalf("uploaded sha256 = %s, want %s", got, want)
	}

	down := filepath.Join(local, "down.bin")
	run(t, s.Command(ctx, t, "scp", "", "127.0.0.1:"+remote, down))
	if got := FileSHA256(t, down); got != want {
		t.Fatalf("downloaded sha256 = %s, want %s", got, want)
	}
}

func TestSFTPBatch(t *testing.T) {
	t.Parallel()
	s := Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	local := t.TempDir()
	up := filepath.Join(local, "up.bin")
	want := RandomFile(t, up, 1<<20)
	remoteDir := filepath.Join(s.Dir, "sftp")
	if err := os.Mkdir(remoteDir, 0o755); err != nil {
		t.Fatal(err)
	}
	remote := filepath.Join(remoteDir, "payload.bin")
	down := filepath.Join(local, "down.bin")

	batch := filepath.Join(local, "batch")
	script := fmt.Sprintf("put %s %s\nget %s %s\nls -1 %s\nrm %s\n", up, remote, remote, down, remoteDir, remote)
	if err := os.WriteFile(batch, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}

	out := run(t, s.Command(ctx, t, "sftp", "", "-b", batch, "127.0.0.1"))
	if !strings.Contains(out, "payload.bin") {
		t.Errorf("sftp ls output does not list payload.bin:\n%s", out)
	}
	if got := FileSHA256(t, down); got != want {
		t.Errorf("sftp round trip sha256 = %s, want %s", got, want)
	}
	if _, err := os.Stat(remote); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("remote file still present after sftp rm: %v", err)
	}
}

// TestParallelClients guards the MaxStartups/MaxSessions settings: with
// sshd's defaults (10 unauthenticated connections) a burst of concurrent
// logins is randomly refused. Goroutines rather than parallel subtests make
// the burst independent of -test.parallel (GOMAXPROCS). The clients use
// sftp, which runs in sshd (internal-sftp) instead of the login shell, so
// the burst costs only the logins even where the user's shell startup
// files are slow.
func TestParallelClients(t *testing.T) {
	t.Parallel()
	s := Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	dir := t.TempDir()
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("client-%d", i)
			batch := filepath.Join(dir, name)
			if err := os.WriteFile(batch, []byte("ls -1 "+dir+"\n"), 0o600); err != nil {
				t.Error(err)
				return
			}
			cmd := s.Command(ctx, t, "sftp", "", "-b", batch, "127.0.0.1")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Errorf("%s: %v\nstderr:\n%s", name, err, stderr.String())
				return
			}
			if !strings.Contains(stdout.String(), name) {
				t.Errorf("%s: listing lacks its own batch file:\n%s", name, stdout.String())
			}
		})
	}
	wg.Wait()
}

// TestWrongHostKeyRejected proves the host key is really pinned, so a
// tunnel that reaches the wrong sshd cannot pass a test.
func TestWrongHostKeyRejected(t *testing.T) {
	t.Parallel()
	a, b := Start(t), Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	// a's options (key, known_hosts) aimed at b's port. ssh keeps the first
	// value of an option, so the Port entry is replaced, not appended.
	args := a.ClientOptions("")
	i := slices.Index(args, fmt.Sprintf("Port=%d", a.Port))
	if i < 0 {
		t.Fatalf("no Port option in %q", args)
	}
	args[i] = fmt.Sprintf("Port=%d", b.Port)
	args = append(args, "127.0.0.1", "true")
	cmd := exec.CommandContext(ctx, "ssh", args...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("ssh to a server with a different host key succeeded:\n%s", out)
	}
	if !strings.Contains(string(out), "HOST IDENTIFICATION HAS CHANGED") &&
		!strings.Contains(string(out), "Host key verification failed") {
		t.Fatalf("unexpected failure output:\n%s", out)
	}
}

func TestCleanupStopsServer(t *testing.T) {
	t.Parallel()
	var s *Server
	t.Run("server", func(t *testing.T) {
		s = Start(t)
	})
	if s == nil {
		t.Skip("inner test skipped")
	}
	if s.cmd.ProcessState == nil {
		t.Fatal("sshd was not waited for after its test finished")
	}
	if conn, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		conn.Close()
		t.Fatalf("%s still accepts connections after cleanup", s.Addr)
	}
}

func TestClientOptions(t *testing.T) {
	s := &Server{Port: 2222, User: "u", Dir: "/d", KeyFile: "/d/id_ed25519", knownHosts: "/d/known_hosts"}

	direct := s.ClientOptions("")
	if !slices.Contains(direct, "Port=2222") {
		t.Errorf("direct options lack Port: %q", direct)
	}
	for _, o := range direct {
		if strings.HasPrefix(o, "ProxyCommand=") {
			t.Errorf("direct options contain %q", o)
		}
	}

	proxied := s.ClientOptions("sandmux connect %h")
	if !slices.Contains(proxied, "ProxyCommand=sandmux connect %h") {
		t.Errorf("proxied options lack ProxyCommand: %q", proxied)
	}
	if slices.Contains(proxied, "Port=2222") {
		t.Errorf("proxied options contain Port: %q", proxied)
	}
	for _, want := range []string{"/dev/null", "/d/id_ed25519", "User=u", "UserKnownHostsFile=/d/known_hosts", "BatchMode=yes", "IdentitiesOnly=yes"} {
		if !slices.Contains(proxied, want) {
			t.Errorf("options lack %q: %q", want, proxied)
		}
	}
}

// recordingTB captures Skipf/Fatalf so Require's CI behaviour can be
// observed without ending the real test.
type recordingTB struct {
	testing.TB
	skipped, fatal string
}

func (r *recordingTB) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recordingTB) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

func TestRequireMissingProgram(t *testing.T) {
	const missing = "sshtest-no-such-program"
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			r := &recordingTB{TB: t}
			Require(r, missing)
			msg := r.skipped
			if ci == "true" {
				msg = r.fatal
				if r.skipped != "" {
					t.Errorf("skipped under CI: %s", r.skipped)
				}
			} else if r.fatal != "" {
				t.Errorf("failed outside CI: %s", r.fatal)
			}
			if !strings.Contains(msg, missing) || !strings.Contains(msg, "apt-get install openssh-server openssh-client") {
				t.Errorf("message %q should name %q and the install command", msg, missing)
			}
		})
	}
}

func TestRandomFileDeterministic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := RandomFile(t, filepath.Join(dir, "x.bin"), 12345)
	again := RandomFile(t, filepath.Join(dir, "x.bin"), 12345)
	other := RandomFile(t, filepath.Join(dir, "y.bin"), 12345)
	if a != again {
		t.Errorf("same name and size gave different content: %s vs %s", a, again)
	}
	if a == other {
		t.Errorf("different names gave identical content")
	}
	if got := FileSHA256(t, filepath.Join(dir, "x.bin")); got != a {
		t.Errorf("FileSHA256 = %s, RandomFile returned %s", got, a)
	}
	fi, err := os.Stat(filepath.Join(dir, "y.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 12345 {
		t.Errorf("size = %d, want 12345", fi.Size())
	}
}
