//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sandmux/sandmux/internal/procstat"
)

// peer is one way of reaching the far end that a scenario compares.
type peer int

const (
	peerRawTCP   peer = iota // the limit: a plain TCP connection (through the same delay line)
	peerDirect               // ssh straight to sshd, no tunnel
	peerRawWS                // sandmux proxy --raw: one plain WebSocket per connection (websocat model)
	peerNoAgent              // sandmux proxy --no-agent: one sandmux session per process
	peerAgent                // sandmux proxy: every stream on the agent's one session
	peerWebsocat             // websocat -b as the client, against sandmux server's raw mode
	peerChisel               // chisel client stdio:TARGET against a chisel server
)

func (p peer) String() string {
	switch p {
	case peerRawTCP:
		return "raw TCP"
	case peerDirect:
		return "ssh direct"
	case peerRawWS:
		return "WS per conn (--raw)"
	case peerNoAgent:
		return "sandmux --no-agent"
	case peerAgent:
		return "sandmux agent"
	case peerWebsocat:
		return "websocat"
	case peerChisel:
		return "chisel"
	}
	return "peer" + strconv.Itoa(int(p))
}

// tunnelled reports whether the peer runs through a sandmux server.
func (p peer) tunnelled() bool { return p != peerRawTCP && p != peerDirect }

// conn is the bench's end of one connection to the target: a TCP socket,
// or the stdin and stdout pipes of a client process.
type conn interface {
	io.Reader
	io.Writer
	CloseWrite() error
	Close() error
	SetDeadline(time.Time) error
}

// request sends the target's request and waits for its acknowledgement,
// which proves the whole path is connected.
func request(c conn, mode byte, size int64) error {
	var req [reqSize]byte
	req[0] = mode
	binary.BigEndian.PutUint64(req[1:], uint64(size))
	if _, err := c.Write(req[:]); err != nil {
		return fmt.Errorf("send request: %w", err)
	}
	var ack [1]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return fmt.Errorf("wait for the target's ack: %w", err)
	}
	if ack[0] != ackByte {
		return fmt.Errorf("target answered %q, not the ack", ack[0])
	}
	return nil
}

// upload sends size bytes and times them from the first byte written to
// the target's count arriving, which is after the last byte was delivered.
func upload(c conn, payload []byte, size int64) (time.Duration, error) {
	if err := request(c, modeUpload, size); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := writeN(c, payload, size); err != nil {
		return 0, fmt.Errorf("upload: %w", err)
	}
	var cnt [8]byte
	if _, err := io.ReadFull(c, cnt[:]); err != nil {
		return 0, fmt.Errorf("read the target's byte count: %w", err)
	}
	d := time.Since(start)
	if n := int64(binary.BigEndian.Uint64(cnt[:])); n != size {
		return 0, fmt.Errorf("target received %d bytes, want %d", n, size)
	}
	return d, nil
}

// download asks for size bytes and times them from the go byte to the
// last byte read (one round trip more than the data itself).
func download(c conn, size int64) (time.Duration, error) {
	if err := request(c, modeDownload, size); err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := c.Write([]byte{goByte}); err != nil {
		return 0, err
	}
	n, err := readN(c, size)
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("download after %d of %d bytes: %w", n, size, err)
	}
	return d, nil
}

// finish half-closes c, waits for the far end's EOF and closes c, so a
// client process exits cleanly; its error is the process's.
func finish(c conn) error {
	_ = c.CloseWrite()
	_, _ = io.Copy(io.Discard, c)
	return c.Close()
}

type tcpConn struct{ *net.TCPConn }

func dialTCP(addr string) (conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return tcpConn{c.(*net.TCPConn)}, nil
}

// tailBuffer keeps the last few KiB written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	const keep = 4 << 10
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > keep {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-keep:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(string(b.buf))
}

// proc is a client process (sandmux proxy, websocat) whose stdin and stdout
// are the bench's conn, exactly as ssh runs a ProxyCommand: two pipes.
type proc struct {
	cmd    *exec.Cmd
	in     *os.File // write end of its stdin
	out    *os.File // read end of its stdout
	stderr tailBuffer
	done   chan struct{}
	err    error
}

// startProc starts name with args; its stdio are pipes the bench holds.
func startProc(name string, args []string, env []string) (*proc, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	p := &proc{in: inW, out: outR, done: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Env = env
	p.cmd.Stdin = inR
	p.cmd.Stdout = outW
	p.cmd.Stderr = &p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	err = p.cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, err
	}
	go func() {
		err := p.cmd.Wait()
		if err != nil {
			if msg := p.stderr.String(); msg != "" {
				err = fmt.Errorf("%w: %s", err, msg)
			}
		}
		p.err = err
		close(p.done)
	}()
	return p, nil
}

func (p *proc) Read(b []byte) (int, error)  { return p.out.Read(b) }
func (p *proc) Write(b []byte) (int, error) { return p.in.Write(b) }
func (p *proc) CloseWrite() error           { return p.in.Close() }
func (p *proc) Pid() int                    { return p.cmd.Process.Pid }

func (p *proc) SetDeadline(t time.Time) error {
	return errors.Join(p.in.SetDeadline(t), p.out.SetDeadline(t))
}

// Close closes both pipes and waits for the process; one that does not
// exit within a few seconds of losing its stdin is killed. The error is
// the process's own failure, if any.
func (p *proc) Close() error {
	_ = p.in.Close()
	_ = p.out.Close()
	return p.wait(5 * time.Second)
}

func (p *proc) wait(grace time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return fmt.Errorf("did not exit within %v of its stdin closing (killed): %v", grace, p.err)
}

// ctxSwitches is the voluntary and involuntary context switches of an
// exited process, all threads.
func (p *proc) ctxSwitches() int64 {
	if p.cmd.ProcessState == nil {
		return 0
	}
	ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return int64(ru.Nvcsw) + int64(ru.Nivcsw) // int32 on 386
}

// CPU is the user+system time of an exited process.
func (p *proc) CPU() time.Duration {
	st := p.cmd.ProcessState
	if st == nil {
		return 0
	}
	return st.UserTime() + st.SystemTime()
}

// serverProc is a `sandmux server` on 127.0.0.1.
type serverProc struct {
	cmd    *exec.Cmd
	Addr   string
	log    string
	done   chan struct{}
	result error
}

// startServer runs `sandmux server` forwarding to target, with extra
// flags, and waits until /healthz answers. An empty target passes no
// --target, which `--ssh embedded` requires.
func (e *env) startServer(target string, flags ...string) (*serverProc, error) {
	var lastErr error
	for attempt := range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		args := []string{"server", "--listen", addr, "--log-level", "warn"}
		if target != "" {
			args = append(args, "--target", target)
		}
		args = append(args, flags...)
		logPath := filepath.Join(e.work, fmt.Sprintf("server-%d-%d.log", port, attempt))
		lf, err := os.Create(logPath)
		if err != nil {
			return nil, err
		}
		s := &serverProc{cmd: exec.Command(e.bin, args...), Addr: addr, log: logPath, done: make(chan struct{})}
		s.cmd.Stdout, s.cmd.Stderr = lf, lf
		s.cmd.Env = e.childEnv()
		err = s.cmd.Start()
		lf.Close()
		if err != nil {
			return nil, err
		}
		go func() {
			s.result = s.cmd.Wait()
			close(s.done)
		}()
		if lastErr = s.waitReady(); lastErr == nil {
			return s, nil
		}
		_ = s.Close()
		if !strings.Contains(lastErr.Error(), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("start sandmux server: %w", lastErr)
}

// limitFlags raises the server's stream limits (per session and in all)
// and session limit, and its limit on connections in their handshake (a scenario dialling
// hundreds of sessions at once), to at least n, for the flags this build
// has (its --help tells).
func (e *env) limitFlags(n int) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.serverHelp == "" {
		out, _ := exec.Command(e.bin, "server", "--help").CombinedOutput()
		e.serverHelp = string(out) + " "
	}
	var flags []string
	for _, f := range []string{"--max-streams", "--max-total-streams", "--max-sessions", "--max-handshakes"} {
		if strings.Contains(e.serverHelp, f+" ") || strings.Contains(e.serverHelp, f+"=") {
			flags = append(flags, f, strconv.Itoa(n))
		}
	}
	return flags
}

func (s *serverProc) waitReady() error {
	// No keep-alive: an idle pooled connection would outlive the probe.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("exited: %v: %s", s.result, s.logTail())
		default:
		}
		resp, err := client.Get("http://" + s.Addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/healthz: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after 15s: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *serverProc) Pid() int { return s.cmd.Process.Pid }

func (s *serverProc) logTail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return strings.TrimSpace(string(b))
}

// Close stops the server with SIGTERM (graceful: it ends its sessions) and
// reports whether it had failed on its own.
func (s *serverProc) Close() error {
	select {
	case <-s.done:
		if s.result != nil {
			return fmt.Errorf("sandmux server died: %v: %s", s.result, s.logTail())
		}
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	return nil
}

// alive reports an error if the server exited early.
func (s *serverProc) alive() error {
	select {
	case <-s.done:
		return fmt.Errorf("sandmux server exited: %v: %s", s.result, s.logTail())
	default:
		return nil
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// agentDir is one agent's private directory. Its path is short, since a
// Unix socket path is limited to about 100 bytes.
type agentDir struct {
	e   *env
	dir string
	pid int // learnt from status once the agent runs
	// flags are extra `sandmux proxy` flags for the agent peer; the first
	// proxy passes the agent-wide ones (--no-resume) to the agent it starts.
	flags []string
}

func (e *env) newAgentDir() (*agentDir, error) {
	dir, err := os.MkdirTemp("", "smxb")
	if err != nil {
		return nil, err
	}
	a := &agentDir{e: e, dir: dir}
	e.agents = append(e.agents, a)
	return a, nil
}

// agentStatus is what `sandmux status --json` prints.
type agentStatus struct {
	Running  bool            `json:"running"`
	PID      int             `json:"pid"`
	Streams  int             `json:"open_streams"`
	Sessions []sessionStatus `json:"sessions"`
}

// sessionStatus is one session of `sandmux status --json`.
type sessionStatus struct {
	URL         string `json:"url"`
	State       string `json:"state"`
	OpenStreams int    `json:"open_streams"`
	Reconnects  int    `json:"reconnects"`
	Resumable   bool   `json:"resumable"`
	Resumes     int64  `json:"resumes"`
	Replayed    int64  `json:"bytes_replayed"`
}

// session is the agent's only session.
func (a *agentDir) session() (sessionStatus, error) {
	st, err := a.status()
	if err != nil {
		return sessionStatus{}, err
	}
	if len(st.Sessions) != 1 {
		return sessionStatus{}, fmt.Errorf("the agent in %s holds %d sessions, want 1", a.dir, len(st.Sessions))
	}
	return st.Sessions[0], nil
}

func (a *agentDir) status() (agentStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.e.bin, "status", "--json", "--agent-dir", a.dir)
	cmd.Env = a.e.childEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return agentStatus{}, fmt.Errorf("sandmux status: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var st agentStatus
	if err := json.Unmarshal(out, &st); err != nil {
		return agentStatus{}, fmt.Errorf("sandmux status --json: %w", err)
	}
	return st, nil
}

// Pid is the running agent's process id.
func (a *agentDir) Pid() (int, error) {
	if a.pid != 0 {
		return a.pid, nil
	}
	st, err := a.status()
	if err != nil {
		return 0, err
	}
	if !st.Running || st.PID == 0 {
		return 0, errors.New("no agent is running in " + a.dir)
	}
	a.pid = st.PID
	return a.pid, nil
}

// stop asks the agent to exit (`sandmux agent --stop`), kills it by pid if
// it does not, and removes the directory.
func (a *agentDir) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.e.bin, "agent", "--stop", "--agent-dir", a.dir)
	cmd.Env = a.e.childEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("sandmux agent --stop: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if a.pid != 0 {
		// The agent is not our child, so poll for its exit.
		for deadline := time.Now().Add(10 * time.Second); processAlive(a.pid); {
			if time.Now().After(deadline) {
				_ = syscall.Kill(a.pid, syscall.SIGKILL)
				err = errors.Join(err, fmt.Errorf("agent %d did not stop; killed", a.pid))
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	_ = os.RemoveAll(a.dir)
	return err
}

func processAlive(pid int) bool {
	// A zombie still answers signal 0, so read its state.
	st, err := procstat.Read(pid)
	return err == nil && !st.Exited()
}

// proxyArgs builds `sandmux proxy` arguments for peer p against url; ca,
// when set, is the CA file a wss:// url needs.
func (e *env) proxyArgs(p peer, url, ca string, a *agentDir) []string {
	args := []string{"proxy", "--url", url}
	if ca != "" {
		args = append(args, "--ca", ca)
	}
	switch p {
	case peerRawWS:
		args = append(args, "--raw")
	case peerNoAgent:
		args = append(args, "--no-agent")
	case peerAgent:
		// --persist bounds how long an agent left behind by a killed
		// bench would linger.
		args = append(args, "--agent-dir", a.dir, "--persist", "3m")
		args = append(args, a.flags...)
	}
	return append(args, "sandbox")
}

// clientCommand is the program and arguments that connect stdio to the
// tunnel's default target for peer p. For ssh, the last argument is the
// host name, which a ProxyCommand replaces with %h.
func (e *env) clientCommand(p peer, t *tunnel) (string, []string, error) {
	switch p {
	case peerRawWS, peerNoAgent, peerAgent:
		return e.bin, e.proxyArgs(p, t.url, t.ca, t.agent), nil
	case peerWebsocat:
		if e.websocat == "" {
			return "", nil, fmt.Errorf("%w: websocat not on PATH", errSkipped)
		}
		// -b binary messages, -E exit on EOF: the model sandmux replaces.
		args := []string{"-b", "-E", t.url}
		if t.ca != "" {
			args = append([]string{"-k"}, args...) // the TLS front's throwaway CA
		}
		return e.websocat, args, nil
	case peerChisel:
		if t.chiselURL == "" {
			return "", nil, fmt.Errorf("%w: chisel not on PATH", errSkipped)
		}
		// chisel's documented ProxyCommand form.
		return e.chisel, []string{"client", t.chiselURL, "stdio:" + t.target}, nil
	}
	return "", nil, fmt.Errorf("peer %v has no client command", p)
}

// startChisel runs `chisel server` on a free loopback port for the chisel
// peer and waits until it accepts connections.
func (e *env) startChisel() (*exec.Cmd, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(e.chisel, "server", "--host", "127.0.0.1", "--port", strconv.Itoa(port))
	cmd.Env = e.childEnv()
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return cmd, addr, nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, "", fmt.Errorf("chisel server not listening on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tunnel is one sandmux server as a scenario sees it: its URL (through the
// delay line for WAN runs) and the agent directory its agent peer uses.
type tunnel struct {
	e      *env
	srv    *serverProc
	url    string
	ca     string // the TLS front's CA file, for wss:// URLs
	agent  *agentDir
	target string // the server's default target
	// chisel, when on PATH, is a chisel server beside sandmux's, reached
	// at chiselURL (through the same delay line).
	chisel    *exec.Cmd
	chiselURL string
	// baseCPU is what an empty connection costs, per peer (see warmUp).
	baseCPU map[peer]cpuSample
}

// dial connects the bench to the tunnel's default target through peer p.
func (t *tunnel) dial(p peer) (conn, error) {
	name, args, err := t.e.clientCommand(p, t)
	if err != nil {
		return nil, err
	}
	pr, err := startProc(name, args, t.e.childEnv())
	if err != nil {
		return nil, err
	}
	return pr, nil
}
