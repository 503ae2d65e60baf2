//go:build unix

package sshd

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/sandmux/sandmux/internal/logflood"
)

// ptyDrain is how long a terminal must stay silent, once its program has
// exited, for the session to end without waiting for EIO: a background job
// that keeps the terminal open must not hold the session open for ever.
const ptyDrain = 500 * time.Millisecond

// Request payloads (RFC 4254 section 6).
type (
	ptyRequestMsg struct {
		Term          string
		Cols, Rows    uint32
		Width, Height uint32
		Modes         string
	}
	windowChangeMsg struct {
		Cols, Rows    uint32
		Width, Height uint32
	}
	envMsg        struct{ Name, Value string }
	execMsg       struct{ Command string }
	subsystemMsg  struct{ Name string }
	signalMsg     struct{ Signal string }
	exitStatusMsg struct{ Status uint32 }
	exitSignalMsg struct {
		Signal     string
		CoreDumped bool
		Error      string
		Lang       string
	}
)

// exitResult is how a session's program ended.
type exitResult struct {
	status uint32
	signal string // without "SIG"; set when a signal killed the program
	core   bool
}

// session is one "session" channel: at most one program (a command, a
// shell or the SFTP subsystem), with an optional terminal.
type session struct {
	c   *conn
	ch  ssh.Channel
	log *slog.Logger

	// Owned by the request loop (serve).
	env      []string   // accepted client variables, "NAME=value"
	term     string     // from pty-req; "" without a terminal
	modes    []termMode // from pty-req: the client terminal's
	wantPTY  bool
	win      unix.Winsize
	started  bool
	finished chan exitResult // nil until started, and again once received
	ptmx     *os.File        // the terminal's master while a program runs on it
	proc     *os.Process
	begin    func() // starts the copies, after the request is answered
	eow      func() // closes the program's stdout (eow@openssh.com); nil without pipes

	hangup chan struct{} // closed when the channel goes away under a running program
	wg     sync.WaitGroup
}

// session accepts a session channel and serves it until it closes.
func (c *conn) session(nch ssh.NewChannel) {
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	s := &session{c: c, ch: ch, log: c.log, hangup: make(chan struct{})}
	defer s.wg.Wait()
	s.serve(reqs)
}

// serve answers the channel's requests and reports the program's end.
func (s *session) serve(reqs <-chan *ssh.Request) {
	defer s.ch.Close()
	running := false
	for {
		select {
		case req, ok := <-reqs:
			if !ok {
				// The peer closed the channel or the connection ended.
				if running {
					close(s.hangup)
					<-s.finished
				}
				return
			}
			s.request(req)
			if s.started && !running && s.finished != nil {
				running = true
			}
		case res := <-s.finished:
			s.finished, running = nil, false
			s.exit(res)
		}
	}
}

func (s *session) request(req *ssh.Request) {
	ok := false
	switch req.Type {
	case "env":
		ok = s.setEnv(req.Payload)
	case "pty-req":
		ok = s.ptyReq(req.Payload)
	case "window-change":
		ok = s.windowChange(req.Payload)
	case "shell", "exec", "subsystem":
		ok = s.start(req)
	case "signal":
		ok = s.signal(req.Payload)
	case "eow@openssh.com":
		// The client can no longer write the output (its stdout was
		// closed, as in "ssh host yes | head -1"). As sshd does, close
		// the program's stdout so that it gets SIGPIPE instead of
		// streaming to a client that discards it.
		if s.eow != nil {
			s.log.Debug("eow: closing the program's stdout")
			s.eow()
			s.eow = nil
		}
	case "keepalive@openssh.com":
		// Any answer proves liveness; OpenSSH's sshd answers failure.
	default:
		s.log.Debug("refused session request", "type", req.Type)
	}
	_ = req.Reply(ok, nil)
	if s.begin != nil {
		begin := s.begin
		s.begin = nil
		begin()
	}
}

// setEnv accepts LANG, LC_* and TERM, as OpenSSH's default AcceptEnv
// does for the locale.
func (s *session) setEnv(payload []byte) bool {
	var m envMsg
	if ssh.Unmarshal(payload, &m) != nil || s.started {
		return false
	}
	if m.Name != "LANG" && m.Name != "TERM" && !strings.HasPrefix(m.Name, "LC_") ||
		strings.ContainsAny(m.Name, "=\x00") || strings.ContainsRune(m.Value, 0) {
		s.log.Debug("refused env", "name", m.Name)
		return false
	}
	s.env = append(s.env, m.Name+"="+m.Value)
	return true
}

// noPTY reports whether the key's authorized_keys line said no-pty. It
// lives here, not beside noPortForwarding, because only sessions (Unix
// only) ask it.
func (c *conn) noPTY() bool {
	_, ok := c.perms.Extensions[extNoPTY]
	return ok
}

func (s *session) ptyReq(payload []byte) bool {
	var m ptyRequestMsg
	if ssh.Unmarshal(payload, &m) != nil || s.started {
		return false
	}
	if s.c.noPTY() {
		s.log.Info("refused pty: the key has no-pty", logflood.Limit)
		return false
	}
	s.wantPTY, s.term = true, m.Term
	s.modes = parseTermModes([]byte(m.Modes))
	s.win = winsize(m.Cols, m.Rows, m.Width, m.Height)
	return true
}

func (s *session) windowChange(payload []byte) bool {
	var m windowChangeMsg
	if ssh.Unmarshal(payload, &m) != nil || !s.wantPTY {
		return false
	}
	s.win = winsize(m.Cols, m.Rows, m.Width, m.Height)
	if s.ptmx != nil {
		// Fails harmlessly once the program has ended and ptmx is closed.
		_ = setWinsize(s.ptmx, &s.win)
	}
	return true
}

func winsize(cols, rows, w, h uint32) unix.Winsize {
	clamp := func(v uint32) uint16 { return uint16(min(v, 0xffff)) }
	return unix.Winsize{Row: clamp(rows), Col: clamp(cols), Xpixel: clamp(w), Ypixel: clamp(h)}
}

// signal forwards a signal request to the program, as OpenSSH does.
func (s *session) signal(payload []byte) bool {
	var m signalMsg
	if ssh.Unmarshal(payload, &m) != nil || s.proc == nil || s.finished == nil {
		return false
	}
	sig := unix.SignalNum("SIG" + m.Signal)
	if sig == 0 {
		s.log.Debug("refused unknown signal", "signal", m.Signal)
		return false
	}
	return s.proc.Signal(sig) == nil
}

// start runs the program a shell, exec or subsystem request asks for.
func (s *session) start(req *ssh.Request) bool {
	if s.started {
		return false
	}
	var err error
	switch req.Type {
	case "subsystem":
		var m subsystemMsg
		if ssh.Unmarshal(req.Payload, &m) != nil || m.Name != "sftp" {
			s.log.Debug("refused subsystem", "name", m.Name)
			return false
		}
		err = s.startSFTP()
	case "exec":
		var m execMsg
		if ssh.Unmarshal(req.Payload, &m) != nil {
			return false
		}
		err = s.startCommand(m.Command, false)
	default: // "shell"
		err = s.startCommand("", true)
	}
	if err != nil {
		s.log.Warn("cannot start session program", logflood.Limit, "request", req.Type, "err", err)
		return false
	}
	s.started = true
	s.log.Debug("session started", "request", req.Type, "pty", s.wantPTY)
	return true
}

// startSFTP serves SFTP on the channel in process, as sshd's
// internal-sftp does. Modern scp speaks SFTP too.
func (s *session) startSFTP() error {
	var opts []sftp.ServerOption
	if dir := s.c.srv.cfg.Dir; dir != "" {
		opts = append(opts, sftp.WithServerWorkingDirectory(dir))
	}
	srv, err := sftp.NewServer(s.ch, opts...)
	if err != nil {
		return err
	}
	finished := make(chan exitResult, 1)
	s.finished = finished
	s.begin = func() {
		s.wg.Go(func() {
			res := exitResult{}
			if err := srv.Serve(); err != nil {
				s.log.Debug("sftp ended", "err", err)
				res.status = 1
			}
			finished <- res
		})
	}
	return nil
}

// startCommand runs the shell: with "-c command", or as a login shell.
func (s *session) startCommand(command string, login bool) error {
	cfg := &s.c.srv.cfg
	cmd := &exec.Cmd{Path: cfg.Shell, Dir: cfg.Dir}
	if login {
		cmd.Args = []string{"-" + filepath.Base(cfg.Shell)}
	} else {
		cmd.Args = []string{filepath.Base(cfg.Shell), "-c", command}
	}
	if s.wantPTY {
		return s.startOnPTY(cmd)
	}
	return s.startOnPipes(cmd)
}

// environ is the program's environment: the server's, less what belongs
// to another login, plus the client's accepted variables and this
// session's.
func (s *session) environ(tty string) []string {
	var env []string
	for _, kv := range s.c.srv.cfg.Env {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "TERM", "PWD", "OLDPWD", "SSH_CLIENT", "SSH_CONNECTION", "SSH_TTY", "SSH_AUTH_SOCK", "SSH_ORIGINAL_COMMAND":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, s.env...)
	env = append(env, "SHELL="+s.c.srv.cfg.Shell)
	rhost, rport, _ := net.SplitHostPort(s.c.sconn.RemoteAddr().String())
	lhost, lport, _ := net.SplitHostPort(s.c.sconn.LocalAddr().String())
	env = append(env,
		"SSH_CLIENT="+rhost+" "+rport+" "+lport,
		"SSH_CONNECTION="+rhost+" "+rport+" "+lhost+" "+lport)
	if tty != "" {
		if s.term != "" {
			env = append(env, "TERM="+s.term)
		}
		env = append(env, "SSH_TTY="+tty)
	}
	return dedupEnv(env)
}

// dedupEnv keeps the last value of each variable, in first-seen order.
func dedupEnv(env []string) []string {
	idx := make(map[string]int, len(env))
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[name]; ok {
			out[i] = kv
			continue
		}
		idx[name] = len(out)
		out = append(out, kv)
	}
	return out
}

// startOnPipes runs cmd with stdin, stdout and stderr on three pipes:
// stdout to the channel's data, stderr to its extended (stderr) data.
func (s *session) startOnPipes(cmd *exec.Cmd) error {
	var files []*os.File // every end, closed on failure
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		files = append(files, r, w)
		return r, w, err
	}
	fail := func(err error) error {
		for _, f := range files {
			if f != nil {
				_ = f.Close()
			}
		}
		return err
	}
	stdinR, stdinW, err := pipe()
	if err != nil {
		return fail(err)
	}
	stdoutR, stdoutW, err := pipe()
	if err != nil {
		return fail(err)
	}
	stderrR, stderrW, err := pipe()
	if err != nil {
		return fail(err)
	}
	cmd.Env = s.environ("")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, stdoutW, stderrW
	// Its own session: no controlling terminal from the server, and one
	// process group to hang up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	_, _, _ = stdinR.Close(), stdoutW.Close(), stderrW.Close()
	s.proc = cmd.Process
	s.finished = make(chan exitResult, 1)
	s.eow = func() { _ = stdoutR.Close() }
	s.begin = func() {
		s.wg.Go(func() {
			_, err := io.CopyBuffer(stdinW, s.ch, make([]byte, copyBufSize))
			_ = stdinW.Close()
			if err != nil {
				// The program stopped reading: keep the channel's window
				// moving until the client stops sending.
				_, _ = io.Copy(io.Discard, s.ch)
			}
		})
		var outputs sync.WaitGroup
		outputs.Go(func() { _, _ = io.CopyBuffer(s.ch, stdoutR, make([]byte, copyBufSize)) })
		outputs.Go(func() { _, _ = io.CopyBuffer(s.ch.Stderr(), stderrR, make([]byte, copyBufSize)) })
		drained := make(chan struct{})
		s.wg.Go(func() { outputs.Wait(); close(drained) })
		finished := s.finished
		s.wg.Go(func() {
			// As with sshd, output is read until every process holding
			// the pipes has closed them, not only the shell.
			res := s.supervise(cmd, drained, nil, func() {
				_, _ = stdoutR.Close(), stderrR.Close()
			})
			_, _, _ = stdinW.Close(), stdoutR.Close(), stderrR.Close()
			finished <- res
		})
	}
	return nil
}

// startOnPTY runs cmd on a new terminal, its controlling terminal.
func (s *session) startOnPTY(cmd *exec.Cmd) error {
	ptmx, tty, err := openPTY()
	if err != nil {
		return err
	}
	if err := setWinsize(ptmx, &s.win); err != nil {
		s.log.Debug("cannot set the terminal size", "err", err)
	}
	if err := applyTermModes(tty, s.modes); err != nil {
		s.log.Debug("cannot set the terminal modes", "err", err)
	}
	cmd.Env = s.environ(tty.Name())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true} // Ctty 0: stdin
	err = cmd.Start()
	_ = tty.Close()
	if err != nil {
		_ = ptmx.Close()
		return err
	}
	s.proc, s.ptmx = cmd.Process, ptmx
	s.finished = make(chan exitResult, 1)
	s.begin = func() {
		// Input ends when the channel closes or ptmx is closed. A client's
		// EOF is not passed on: a terminal has no EOF, only ^D.
		s.wg.Go(func() { _, _ = io.CopyBuffer(ptmx, s.ch, make([]byte, copyBufSize)) })
		drained := make(chan struct{})
		var exited atomic.Bool
		s.wg.Go(func() {
			defer close(drained)
			// Ends with EIO once no process holds the terminal, or,
			// after the program exited, once the terminal has been
			// silent for ptyDrain (a background job may hold it open).
			buf := make([]byte, copyBufSize)
			for {
				if exited.Load() {
					_ = ptmx.SetReadDeadline(time.Now().Add(ptyDrain))
				}
				n, err := ptmx.Read(buf)
				if n > 0 {
					if _, werr := s.ch.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		})
		finished := s.finished
		s.wg.Go(func() {
			res := s.supervise(cmd, drained,
				func() {
					exited.Store(true)
					// Wakes a read that started without a deadline.
					_ = ptmx.SetReadDeadline(time.Now().Add(ptyDrain))
				},
				func() { _ = ptmx.Close() })
			_ = ptmx.Close()
			finished <- res
		})
	}
	return nil
}

// supervise waits until cmd has exited and its output is drained. If the
// channel hangs up first, forceClose cuts the output off (from processes
// that escaped the group too), then the program's process group gets
// SIGHUP, and SIGKILL after HangupGrace. afterExit runs when cmd exits.
func (s *session) supervise(cmd *exec.Cmd, drained <-chan struct{}, afterExit, forceClose func()) exitResult {
	exited := make(chan exitResult, 1)
	s.wg.Go(func() {
		_ = cmd.Wait()
		exited <- exitOf(cmd.ProcessState)
	})
	var (
		res             exitResult
		gotExit, gotEOF bool
		hangup          = s.hangup
	)
	for !gotExit || !gotEOF {
		select {
		case res = <-exited:
			gotExit = true
			if afterExit != nil {
				afterExit()
			}
		case <-drained:
			gotEOF, drained = true, nil
		case <-hangup:
			hangup = nil
			// The output is cut off before the hang-up, as sshd closes
			// its end of the pipes (or the terminal) when the channel
			// goes: a program that cleans up on SIGHUP by writing to
			// the client first (rsync --partial keeping what it has)
			// then gets EPIPE rather than blocking on a full pipe until
			// SIGKILL.
			forceClose()
			if !gotExit {
				res, gotExit = s.hangUp(cmd.Process.Pid, exited), true
			}
		}
	}
	return res
}

// hangUp ends the process group pgid: SIGHUP, then SIGKILL after the
// grace period. It returns once the group leader has exited.
func (s *session) hangUp(pgid int, exited <-chan exitResult) exitResult {
	s.log.Debug("hanging up session program", "pid", pgid)
	_ = syscall.Kill(-pgid, syscall.SIGHUP)
	t := time.NewTimer(s.c.srv.cfg.HangupGrace)
	defer t.Stop()
	select {
	case res := <-exited:
		return res
	case <-t.C:
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		s.log.Warn("cannot kill session program", "pid", pgid, "err", err)
	}
	return <-exited
}

// exitOf turns a wait status into what the client is told.
func exitOf(ps *os.ProcessState) exitResult {
	if ps == nil {
		return exitResult{status: 255}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		name := strings.TrimPrefix(unix.SignalName(ws.Signal()), "SIG")
		if name == "" {
			// A signal without a name (a real-time one): an empty name
			// would send exit-status 0, a success. OpenSSH's name for it.
			name = "SIG@openssh.com"
		}
		return exitResult{signal: name, core: ws.CoreDump()}
	}
	return exitResult{status: uint32(ps.ExitCode())}
}

// exit ends the channel after the program: EOF, its exit status (or the
// signal that killed it), close.
func (s *session) exit(res exitResult) {
	_ = s.ch.CloseWrite()
	if res.signal != "" {
		_, _ = s.ch.SendRequest("exit-signal", false, ssh.Marshal(exitSignalMsg{Signal: res.signal, CoreDumped: res.core}))
	} else {
		_, _ = s.ch.SendRequest("exit-status", false, ssh.Marshal(exitStatusMsg{Status: res.status}))
	}
	_ = s.ch.Close()
	s.log.Debug("session ended", "status", res.status, "signal", res.signal)
}
