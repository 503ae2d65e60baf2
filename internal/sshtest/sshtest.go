// Package sshtest runs a throwaway OpenSSH sshd and the real OpenSSH clients
// (ssh, scp, sftp) for end-to-end tests.
//
// The tunnel has to carry whatever the real programs put on the wire, so the
// tests deliberately use the system binaries instead of an in-process Go SSH
// implementation. Everything here is isolated from the invoking user's
// ~/.ssh and from the system sshd: configuration, keys and known_hosts live in
// a per-test temporary directory and the server only listens on 127.0.0.1.
package sshtest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// sshdPath is absolute because sshd refuses to start otherwise: it
	// re-executes itself for every connection and needs a trustworthy path.
	sshdPath = "/usr/sbin/sshd"

	installHint = "install it with: apt-get install openssh-server openssh-client rsync"

	// privsepDir is the Debian/Ubuntu compiled-in privilege separation
	// directory. Root sshd refuses to start without it, and nothing creates
	// it when the package is installed without systemd (containers, CI).
	privsepDir = "/run/sshd"

	// startAttempts bounds retries for the unavoidable race between
	// releasing a probed free port and sshd binding it.
	startAttempts = 5

	// readyTimeout is generous because -race CI machines running many
	// parallel servers can be very slow to fork and load keys.
	readyTimeout = 30 * time.Second

	// stopTimeout is how long sshd gets to honour SIGTERM before SIGKILL.
	stopTimeout = 10 * time.Second

	// pollInterval paces readiness polling; small enough not to slow tests.
	pollInterval = 20 * time.Millisecond

	// clientWaitDelay bounds how long Wait blocks on output pipes after the
	// client exits; a ProxyCommand grandchild can otherwise keep them open
	// and hang the test.
	clientWaitDelay = 10 * time.Second
)

// errBindFailed marks a start attempt that lost the free-port race, the one
// failure worth retrying with a different port.
var errBindFailed = errors.New("sshd could not bind its port")

// Require exists so that machines without OpenSSH skip the end-to-end tests
// locally, while CI (CI=true) fails loudly instead of silently passing a
// suite that never ran. "sshd" is checked at its fixed absolute path because
// /usr/sbin is often not on PATH for ordinary users.
func Require(t testing.TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := lookProgram(p); err != nil {
			msg := fmt.Sprintf("sshtest: required program %q is not available (%v); %s", p, err, installHint)
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s", msg)
			} else {
				t.Skipf("%s", msg)
			}
			// Only reached with a testing.TB whose Skipf/Fatalf return.
			return
		}
	}
}

func lookProgram(name string) (string, error) {
	if name != "sshd" {
		return exec.LookPath(name)
	}
	fi, err := os.Stat(sshdPath)
	if err != nil {
		return "", err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", sshdPath)
	}
	return sshdPath, nil
}

// Server is a throwaway sshd bound to 127.0.0.1 that accepts exactly one
// key for the current user. Its fields are what a test needs to point the
// real clients (or a tunnel) at it; they must not be modified.
type Server struct {
	// Addr is "127.0.0.1:PORT", ready to hand to a tunnel backend.
	Addr string
	// Port is the TCP port of Addr.
	Port int
	// User is the login name, the current user, because an unprivileged
	// sshd can only authenticate the user it runs as.
	User string
	// Dir holds the config, keys, known_hosts and log. Tests may also use
	// it as a remote scratch directory since client and server share a
	// filesystem.
	Dir string
	// KeyFile is the ed25519 private key authorized for User.
	KeyFile string

	knownHosts string
	logPath    string
	extra      string // Options.ExtraConfig
	cmd        *exec.Cmd
	exited     chan struct{} // closed once cmd.Wait has returned
}

// Start returns a running server that is already answering SSH, so callers
// never need to sleep or retry their first connection. Everything it starts
// is torn down by t.Cleanup; on test failure the sshd log is written with
// t.Log because sshd's side of an authentication or protocol failure is
// usually the only useful diagnostic.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// Options adjust a server started with StartWith. The zero value is what
// Start uses.
type Options struct {
	// ExtraConfig is appended to the generated sshd_config, one keyword
	// per line. sshd keeps the first value it reads for most keywords, so
	// this can add settings (SetEnv, ForceCommand, Ciphers...) but cannot
	// override the ones Start already writes.
	ExtraConfig string
}

// StartWith is Start with options, for callers such as benchmarks that need
// a differently configured sshd.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	Require(t, "sshd", "ssh-keygen")

	u, err := user.Current()
	if err != nil {
		t.Fatalf("sshtest: looking up current user: %v", err)
	}
	if os.Geteuid() == 0 {
		ensurePrivsepDir(t)
	}

	dir := configDir(t)
	s := &Server{
		User:       u.Username,
		Dir:        dir,
		extra:      o.ExtraConfig,
		KeyFile:    filepath.Join(dir, "id_ed25519"),
		knownHosts: filepath.Join(dir, "known_hosts"),
		logPath:    filepath.Join(dir, "sshd.log"),
	}

	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	keygen(t, hostKey, "sshtest-host")
	keygen(t, s.KeyFile, "sshtest-user")

	userPub := readFile(t, s.KeyFile+".pub")
	writeFile(t, filepath.Join(dir, "authorized_keys"), userPub)

	// A wildcard entry pins the real host key for every host name, which
	// lets StrictHostKeyChecking=yes work both for 127.0.0.1 and for the
	// arbitrary names used with a ProxyCommand, and means parallel clients
	// never write (and race on) known_hosts.
	hostPub := strings.Fields(string(readFile(t, hostKey+".pub")))
	if len(hostPub) < 2 {
		t.Fatalf("sshtest: malformed host public key %q", hostPub)
	}
	writeFile(t, s.knownHosts, []byte("* "+hostPub[0]+" "+hostPub[1]+"\n"))

	cfgPath := filepath.Join(dir, "sshd_config")
	penalties := true
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		writeFile(t, cfgPath, []byte(s.config(port, hostKey, penalties)))
		if attempt == 1 {
			// Validate up front so a bad config fails with sshd's own
			// message rather than as a readiness timeout.
			out, err := checkConfig(cfgPath)
			if err != nil && penalties && strings.Contains(out, "PerSourcePenalties") {
				// OpenSSH < 9.8 rejects the keyword outright.
				penalties = false
				writeFile(t, cfgPath, []byte(s.config(port, hostKey, penalties)))
				out, err = checkConfig(cfgPath)
			}
			if err != nil {
				t.Fatalf("sshtest: sshd rejected its config: %v\n%s", err, out)
			}
		}

		err := s.launch(cfgPath, port)
		if err == nil {
			break
		}
		if errors.Is(err, errBindFailed) && attempt < startAttempts {
			t.Logf("sshtest: port %d was taken before sshd bound it, retrying", port)
			continue
		}
		t.Fatalf("sshtest: starting sshd (attempt %d): %v\n--- sshd log ---\n%s", attempt, err, s.logs())
	}

	t.Cleanup(func() {
		crashed := s.stop()
		if crashed {
			t.Errorf("sshtest: sshd on %s exited before the test finished\n--- sshd log ---\n%s", s.Addr, s.logs())
		} else if t.Failed() {
			t.Logf("sshtest: sshd log for %s:\n%s", s.Addr, s.logs())
		}
	})
	return s
}

// config renders sshd_config. Besides isolation, it raises MaxStartups and
// MaxSessions because the defaults (10:30:100, 10) make sshd drop
// connections when tests run many clients in parallel, and it uses
// internal-sftp so no sftp-server binary path has to be right.
func (s *Server) config(port int, hostKey string, penalties bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ListenAddress 127.0.0.1\n")
	fmt.Fprintf(&b, "Port %d\n", port)
	fmt.Fprintf(&b, "HostKey %s\n", hostKey)
	fmt.Fprintf(&b, "AuthorizedKeysFile %s\n", filepath.Join(s.Dir, "authorized_keys"))
	b.WriteString(`StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
PidFile none
MaxStartups 100:30:200
MaxSessions 100
LogLevel VERBOSE
UseDNS no
PrintMotd no
PrintLastLog no
`)
	if penalties {
		// OpenSSH >= 9.8 otherwise penalises 127.0.0.1 for readiness
		// probes and failed attempts and starts refusing every test.
		b.WriteString("PerSourcePenalties no\n")
	}
	if s.extra != "" {
		b.WriteString(strings.TrimRight(s.extra, "\n") + "\n")
	}
	return b.String()
}

// launch starts one sshd and waits for it to answer; on failure it leaves
// no process behind.
func (s *Server) launch(cfgPath string, port int) error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(sshdPath, "-D", "-e", "-f", cfgPath)
	// Files rather than buffers: exec then needs no copying goroutines,
	// and the log survives for post-mortem printing.
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	err = cmd.Start()
	logf.Close() // sshd holds its own descriptor
	if err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := s.waitReady(addr, port, exited); err != nil {
		stopProcess(cmd, exited)
		if bindFailed(s.logs()) {
			return fmt.Errorf("%w: %v", errBindFailed, err)
		}
		return err
	}
	s.cmd, s.exited = cmd, exited
	s.Addr, s.Port = addr, port
	return nil
}

// waitReady requires both sshd's own "Server listening" line and a banner:
// the banner alone could come from some other server that grabbed the port
// after sshd failed to bind it.
func (s *Server) waitReady(addr string, port int, exited <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	listening := fmt.Sprintf("Server listening on 127.0.0.1 port %d", port)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var lastErr error = errors.New("sshd has not logged that it is listening")
	for {
		select {
		case <-exited:
			return errors.New("sshd exited before it was ready")
		default:
		}
		if strings.Contains(s.logs(), listening) {
			if lastErr = probeBanner(addr, deadline); lastErr == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sshd not ready on %s after %v: %v", addr, readyTimeout, lastErr)
		}
		select {
		case <-exited:
			return errors.New("sshd exited before it was ready")
		case <-tick.C:
		}
	}
}

func probeBanner(addr string, deadline time.Time) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	d := time.Now().Add(2 * time.Second)
	if d.After(deadline) {
		d = deadline
	}
	if err := conn.SetDeadline(d); err != nil {
		return err
	}
	line, err := bufio.NewReaderSize(conn, 256).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading banner: %w", err)
	}
	if !strings.HasPrefix(line, "SSH-2.0-") {
		return fmt.Errorf("unexpected banner %q", strings.TrimSpace(line))
	}
	return nil
}

func bindFailed(log string) bool {
	return strings.Contains(log, "Address already in use") ||
		strings.Contains(log, "Cannot bind any address")
}

// stop terminates sshd and reports whether it had already died on its own.
func (s *Server) stop() (crashed bool) {
	select {
	case <-s.exited:
		return true
	default:
	}
	stopProcess(s.cmd, s.exited)
	return false
}

func stopProcess(cmd *exec.Cmd, exited <-chan struct{}) {
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-exited:
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-exited
	}
}

func (s *Server) logs() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read sshd log: %v)", err)
	}
	return string(b)
}

// ClientOptions isolates the clients from the invoking user's ssh setup
// (config, agent, default keys, known_hosts) so tests behave the same on a
// developer laptop and in CI, and so they never prompt. The host key is
// pinned, so a tunnel that connects to the wrong server fails the test.
//
// With a proxyCommand the host name given to ssh is arbitrary (for example
// "sandbox"); ssh expands %h and %p in it and runs it through the shell.
// Without one, the Port option is set and callers connect to "127.0.0.1".
// The options are valid for ssh, scp and sftp alike and must precede the
// destination argument. ssh keeps the first value it sees for an option, so
// a later "-o Port=..." or "-o User=..." does not override these; build a
// modified copy of the slice instead.
func (s *Server) ClientOptions(proxyCommand string) []string {
	opts := []string{
		"-F", "/dev/null",
		"-i", s.KeyFile,
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + s.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "UpdateHostKeys=no",
		"-o", "LogLevel=ERROR",
		"-o", "User=" + s.User,
		"-o", "ConnectTimeout=20",
	}
	if proxyCommand != "" {
		opts = append(opts, "-o", "ProxyCommand="+proxyCommand)
	} else {
		opts = append(opts, "-o", "Port="+strconv.Itoa(s.Port))
	}
	return opts
}

// Command saves every test from assembling ClientOptions by hand. args
// follow the options, so they carry program flags and the destination, e.g.
// ("ssh", "", "127.0.0.1", "echo", "hi") or ("sftp", "", "-b", f, "127.0.0.1").
// The command is killed when ctx is done, and Wait gives up on its output
// pipes shortly after the client exits so a lingering ProxyCommand cannot
// hang the test.
func (s *Server) Command(ctx context.Context, t testing.TB, program, proxyCommand string, args ...string) *exec.Cmd {
	t.Helper()
	Require(t, program)
	cmd := exec.CommandContext(ctx, program, append(s.ClientOptions(proxyCommand), args...)...)
	cmd.WaitDelay = clientWaitDelay
	return cmd
}

// RandomFile makes transfer payloads that are incompressible (so SSH
// compression cannot hide data loss) yet reproducible between runs. The
// seed is derived from the file's base name and size, so differently named
// files differ while reruns produce identical bytes.
func RandomFile(t testing.TB, path string, size int64) string {
	t.Helper()
	if size < 0 {
		t.Fatalf("sshtest: RandomFile %s: negative size %d", path, size)
	}
	seed := sha256.Sum256([]byte(fmt.Sprintf("sshtest:%s:%d", filepath.Base(path), size)))
	src := rand.NewChaCha8(seed)

	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatalf("sshtest: RandomFile: %v", err)
	}
	h := sha256.New()
	_, err = io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(src, size), make([]byte, 1<<20))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("sshtest: RandomFile %s: %v", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// FileSHA256 is the other half of RandomFile: compare its result with the
// returned checksum to prove a transfer was byte-exact.
func FileSHA256(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("sshtest: FileSHA256: %v", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatalf("sshtest: FileSHA256 %s: %v", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// configDir returns t.TempDir unless its path would be mangled by OpenSSH:
// sshd_config and -o values split on whitespace and expand % tokens, and
// t.TempDir embeds the test name, which may contain both.
func configDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if safePath(dir) {
		return dir
	}
	dir, err := os.MkdirTemp("", "sshtest-")
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if !safePath(dir) {
		t.Fatalf("sshtest: temporary directory %q contains characters OpenSSH cannot handle; set TMPDIR to a simple path", dir)
	}
	return dir
}

func safePath(p string) bool {
	for _, r := range p {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("/._-+", r):
		default:
			return false
		}
	}
	return true
}

func ensurePrivsepDir(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(privsepDir); err == nil {
		return
	}
	// MkdirAll tolerates parallel tests racing to create it.
	if err := os.MkdirAll(privsepDir, 0o755); err != nil {
		t.Fatalf("sshtest: creating sshd privilege separation directory: %v", err)
	}
	// Mode is applied explicitly because MkdirAll is subject to umask.
	if err := os.Chmod(privsepDir, 0o755); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
}

func keygen(t testing.TB, path, comment string) {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("sshtest: ssh-keygen %s: %v\n%s", path, err, out)
	}
}

func checkConfig(cfgPath string) (string, error) {
	out, err := exec.Command(sshdPath, "-t", "-f", cfgPath).CombinedOutput()
	return string(out), err
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sshtest: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	return b
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
}
