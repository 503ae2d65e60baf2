//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandmux/sandmux/internal/sshtest"
	"github.com/sandmux/sandmux/internal/testutil"
)

// chaosJob is one real program's transfer in a chaos round: it moves
// bytes through the tunnel and checks every one of them.
type chaosJob struct {
	name  string // kind, mode and size, e.g. "scp-up agent 12MiB"
	agent bool   // through the agent, else a --no-agent proxy
	bytes int64  // carried through the tunnel, both ways counted
	// run does the transfer and its check; a non-nil error says what
	// went wrong, with the program's output.
	run func() error
	// stderr is what the program wrote there, for the one-line checks
	// when the fault is meant to end it.
	stderr func() string
	// progress is how many bytes it has moved so far.
	progress func() int64
	// ended marks a job a fault was meant to end.
	ended bool
	// stream is the job's catStream, for a "stream" job.
	stream *catStream
	// cmd is the job's program (scp or ssh) for the kinds that run one,
	// to set up before it starts; pid is its process once started (0
	// before), for signals.
	cmd *exec.Cmd
	pid atomic.Int64
	// refused are the one-line failures of new connections that a
	// fault hit before the server had accepted their session: those may
	// fail (spec §9.2), with one clear line.
	refused []string
}

// process is the pid of the job's program once it has started, or 0.
// Its progress can show a moment before the pid is stored, so it waits
// a little for it.
func (j *chaosJob) process() int {
	var pid int64
	testutil.Poll(5*time.Second, func() bool {
		pid = j.pid.Load()
		return pid > 0
	})
	return int(pid)
}

// chaosKinds are the transfers a round picks from.
var chaosKinds = []string{"scp-up", "scp-down", "sftp", "rsync", "stream"}

// chaosFiles is where one round's jobs keep their files: local on the
// ssh side, remote in sshd's directory.
type chaosFiles struct{ local, remote string }

// newJob prepares a job of kind, moving about size bytes each way,
// through the agent or a --no-agent proxy. seed makes its data.
func (c *chaosRig) newJob(ctx context.Context, kind string, agent bool, size int64, seed uint64, f chaosFiles, idx int) *chaosJob {
	c.t.Helper()
	mode := "no-agent"
	if agent {
		mode = "agent"
	}
	name := fmt.Sprintf("%s %s %dKiB #%d", kind, mode, size>>10, idx)
	base := fmt.Sprintf("j%d-%s-%d", idx, kind, seed%1000000)
	src := filepath.Join(f.local, base+".src")
	remote := filepath.Join(f.remote, base+".remote")
	back := filepath.Join(f.local, base+".back")
	var errb testutil.Buffer
	j := &chaosJob{name: name, agent: agent, stderr: errb.String}
	exact := func(path, want, what string) error {
		if got := fileSum(path); got != want {
			return fmt.Errorf("%s: %s sha256 %s, want %s (size %d of %d)", name, what, got, want, totalSize([]string{path}), size)
		}
		return nil
	}
	runCmd := func(cmd *exec.Cmd) error {
		cmd.Stderr = &errb
		start := time.Now()
		err := cmd.Start()
		if err == nil {
			j.pid.Store(int64(cmd.Process.Pid))
			err = cmd.Wait()
		}
		if err != nil {
			return fmt.Errorf("%s: %v after %v; stderr %q", name, err, time.Since(start).Round(time.Millisecond), errb.String())
		}
		return nil
	}
	switch kind {
	case "scp-up":
		want := sshtest.RandomFile(c.t, src, size)
		cmd := c.program(ctx, agent, "scp", "-q", src, "sandbox:"+remote)
		j.bytes, j.progress = size, func() int64 { return totalSize([]string{remote}) }
		j.run = func() error {
			if err := runCmd(cmd); err != nil {
				return err
			}
			return exact(remote, want, "uploaded")
		}
	case "scp-down":
		want := sshtest.RandomFile(c.t, remote, size)
		cmd := c.program(ctx, agent, "scp", "-q", "sandbox:"+remote, back)
		j.cmd = cmd
		j.bytes, j.progress = size, func() int64 { return totalSize([]string{back}) }
		j.run = func() error {
			if err := runCmd(cmd); err != nil {
				return err
			}
			return exact(back, want, "downloaded")
		}
	case "sftp":
		want := sshtest.RandomFile(c.t, src, size)
		batch := filepath.Join(f.local, base+".batch")
		if err := os.WriteFile(batch, fmt.Appendf(nil, "put %s %s\nget %s %s\n", src, remote, remote, back), 0o600); err != nil {
			c.t.Fatal(err)
		}
		cmd := c.program(ctx, agent, "sftp", "-b", batch, "sandbox")
		j.bytes, j.progress = 2*size, func() int64 { return totalSize([]string{remote, back}) }
		j.run = func() error {
			if err := runCmd(cmd); err != nil {
				return err
			}
			if err := exact(remote, want, "put"); err != nil {
				return err
			}
			return exact(back, want, "got")
		}
	case "rsync":
		want := sshtest.RandomFile(c.t, src, size)
		rsh := c.rsyncShell(agent)
		up := c.withEnv(exec.CommandContext(ctx, "rsync", "-e", rsh, src, "sandbox:"+remote))
		down := c.withEnv(exec.CommandContext(ctx, "rsync", "-e", rsh, "sandbox:"+remote, back))
		j.bytes, j.progress = 2*size, func() int64 { return totalSize([]string{remote, back}) }
		j.run = func() error {
			if err := runCmd(up); err != nil {
				return err
			}
			if err := exact(remote, want, "rsynced up"); err != nil {
				return err
			}
			if err := runCmd(down); err != nil {
				return err
			}
			return exact(back, want, "rsynced down")
		}
	case "stream":
		cmd := c.program(ctx, agent, "ssh", "sandbox", "cat")
		cmd.Stderr = &errb
		s := &catStream{name: name, size: size, seed: seed, started: func(pid int) { j.pid.Store(int64(pid)) }}
		j.bytes, j.progress, j.stream, j.cmd = 2*size, s.received, s, cmd
		j.run = func() error { return s.run(cmd) }
	case "shorts":
		// size/64 KiB short ssh commands one after another, each a new
		// stream (and through --no-agent a new session) that faults may
		// meet in its first handshake.
		n := max(int(size>>16), 2)
		cmds := make([]*exec.Cmd, n)
		for i := range cmds {
			cmds[i] = c.program(ctx, agent, "ssh", "sandbox", "echo", fmt.Sprintf("short-%d", i))
		}
		var moved atomic.Int64
		j.bytes, j.progress = int64(n), moved.Load
		j.run = func() error {
			for i, cmd := range cmds {
				r := run(cmd, "")
				moved.Add(1)
				want := fmt.Sprintf("short-%d\n", i)
				if r.err == nil && r.stdout == want {
					continue
				}
				lines := sandmuxLines(r.stderr)
				if r.err != nil && !agent && len(lines) == 1 && isNewSessionLoss(lines[0]) {
					j.refused = append(j.refused, lines[0])
					continue
				}
				return fmt.Errorf("%s: ssh echo %d: want %q or, through --no-agent, one line saying the new session was lost\n%s", name, i, want, r)
			}
			return nil
		}
	default:
		c.t.Fatalf("chaos: unknown job kind %q", kind)
	}
	return j
}

// isNewSessionLoss reports whether a proxy's line says its new session's
// connection was reset before the server accepted the session: in the
// TCP connect, in the upgrade, or after the HELLO but before the WELCOME.
// A --no-agent proxy does not dial its first connection again.
func isNewSessionLoss(line string) bool {
	return strings.Contains(line, "before the server accepted the session") ||
		strings.HasPrefix(line, "sandmux: ws://") && (strings.Contains(line, "closed before any answer") || strings.Contains(line, "reset before any answer"))
}

// rsyncShell is rsync's -e: ssh with the rig's options, each quoted for
// rsync's own word splitting (the ProxyCommand has spaces).
func (c *chaosRig) rsyncShell(agent bool) string {
	words := []string{"ssh"}
	for _, o := range c.sshd.ClientOptions(c.proxyFor(agent)) {
		words = append(words, "'"+o+"'")
	}
	return strings.Join(words, " ")
}

// fileSum is sshtest.FileSHA256 for a job's goroutine, which must not
// fail the test itself: a file it cannot read sums to "(err)", which
// matches no checksum.
func fileSum(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// catStream is an interactive-ish session: a seeded byte pattern typed
// into `ssh sandbox cat` in chunks of random size, some after a pause,
// whose echo must be the pattern again, every byte once and in order.
type catStream struct {
	name string
	size int64 // at most
	seed uint64
	// stop, if not nil, ends the typing early when it closes; the echo
	// must then be what was typed until then.
	stop <-chan struct{}
	// rate caps the typing in bytes per second (0: as fast as it goes),
	// so that a long stream in `make test` leaves the CPUs to the rest.
	rate int64
	// started, if not nil, is told ssh's pid once it runs.
	started func(pid int)

	sent atomic.Int64
	mu   sync.Mutex
	got  int64
}

func (s *catStream) received() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got
}

// pattern is the stream's bytes: the same seed gives the same bytes to
// the writer and to the checker.
func (s *catStream) pattern() io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], s.seed)
	return io.LimitReader(rand.NewChaCha8(key), s.size)
}

func (s *catStream) run(cmd *exec.Cmd) error {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	if s.started != nil {
		s.started(cmd.Process.Pid)
	}
	wrote := make(chan error, 1)
	go func() { wrote <- s.write(stdin) }()
	checkErr := s.check(stdout)
	if checkErr != nil {
		// Stop the writer and ssh: the verdict is in.
		_ = cmd.Process.Kill()
	}
	werr := <-wrote
	err = cmd.Wait()
	took := time.Since(start).Round(time.Millisecond)
	switch {
	case checkErr != nil:
		return fmt.Errorf("%s: %w after %v (ssh: %v; stderr %q)", s.name, checkErr, took, err, cmd.Stderr)
	case err != nil:
		return fmt.Errorf("%s: ssh %v after %v, %d of %d bytes echoed; stderr %q", s.name, err, took, s.received(), s.size, cmd.Stderr)
	case werr != nil:
		return fmt.Errorf("%s: writing to ssh: %v", s.name, werr)
	}
	return nil
}

// write types the pattern, then closes ssh's stdin so cat ends.
func (s *catStream) write(w io.WriteCloser) error {
	defer w.Close()
	pace := rand.New(rand.NewPCG(s.seed, 1))
	src := s.pattern()
	buf := make([]byte, 64<<10)
	start := time.Now()
	for {
		if s.rate > 0 {
			// Pacing of the load, not synchronisation.
			time.Sleep(time.Duration(s.sent.Load())*time.Second/time.Duration(s.rate) - time.Since(start))
		}
		n := 1 + pace.IntN(len(buf))
		if pace.IntN(4) == 0 {
			n = 1 + pace.IntN(64) // a few keystrokes
		}
		select {
		case <-s.stop:
			return nil
		default:
		}
		n, rerr := io.ReadFull(src, buf[:n])
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			s.sent.Add(int64(n))
		}
		if rerr != nil {
			return nil
		}
		if pace.IntN(16) == 0 {
			// A pause, as a typist or an interactive program makes:
			// pacing of the load, not synchronisation.
			time.Sleep(time.Duration(pace.IntN(30)) * time.Millisecond)
		}
	}
}

// check compares the echo with the pattern and names the first offset
// that differs, which tells a dropped, doubled or reordered byte from a
// short stream.
func (s *catStream) check(r io.Reader) error {
	want := s.pattern()
	got := make([]byte, 64<<10)
	exp := make([]byte, 64<<10)
	var off int64
	for {
		n, err := r.Read(got)
		if n > 0 {
			m, _ := io.ReadFull(want, exp[:n])
			if i := firstDiff(got[:n], exp[:m]); i >= 0 {
				return fmt.Errorf("echo differs from what was typed at byte %d of %d", off+int64(i), s.size)
			}
			off += int64(n)
			s.mu.Lock()
			s.got = off
			s.mu.Unlock()
		}
		if err == io.EOF {
			// The typing has ended: ssh closes cat's input only once
			// ours is closed.
			if sent := s.sent.Load(); off != sent {
				return fmt.Errorf("echo ended after %d of the %d bytes typed", off, sent)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading ssh's stdout at byte %d: %w", off, err)
		}
	}
}

// firstDiff is the index of the first byte where got and want differ
// (got running past want counts), or -1.
func firstDiff(got, want []byte) int {
	if bytes.Equal(got, want) {
		return -1
	}
	for i := range got {
		if i >= len(want) || got[i] != want[i] {
			return i
		}
	}
	return len(got)
}
