//go:build !windows

package main

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/sandmux/sandmux/internal/procstat"
	"golang.org/x/sys/unix"
)

// agentSupported: the shared agent needs flock, SO_PEERCRED and setsid.
const agentSupported = true

// detach makes cmd a session leader of its own (setsid), so that it
// outlives the terminal and the process that started it.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }

// processAlive reports whether pid runs (zombies count as gone where
// /proc tells).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return false
	}
	st, err := procstat.Read(pid)
	if err != nil {
		return true // no /proc (darwin): kill(0) said it exists
	}
	return !st.Exited()
}

// setNonblock puts fd in non-blocking mode.
func setNonblock(fd uintptr) error { return syscall.SetNonblock(int(fd), true) }

// isNonblock reports whether f is in non-blocking mode, without f.Fd(),
// which would put it in blocking mode.
func isNonblock(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	nb := false
	_ = rc.Control(func(fd uintptr) {
		fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		nb = err == nil && fl&unix.O_NONBLOCK != 0
	})
	return nb
}

// terminateSignals are the signals that stop a long-running command. A
// hang-up (its terminal closed) stops it as the others do: left to Go's
// default, it would die at once, and the peers of what it forwards would
// take the end of their connections for a clean one. Unless it was
// started ignoring hang-ups (nohup): signal.Notify would undo that, and a
// forward started under nohup would stop when its terminal closed.
var terminateSignals = func() []os.Signal {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}()

// forwardAlive reports whether pid is a running background forward (its
// command line says so where the system shows it: /proc, or macOS's
// kern.procargs2), so a reused pid is not listed, nor given to kill.
func forwardAlive(pid int) bool {
	if !processAlive(pid) {
		return false
	}
	args, err := processArgs(pid)
	if err != nil {
		return true
	}
	return slices.Contains(args, "--background-child")
}

// releaseStdio points stderr at /dev/null. A detached agent calls it once
// it listens: its starter reads its stderr until then, for a failure to
// start (agent.StartDetached). A proxy whose ssh has exited
// calls it before its close handshake: a caller capturing ssh's output
// (out=$(ssh ... 2>&1)) reads until every holder of the pipe is gone, and
// the handshake takes a round trip to the server. Stdin and stdout are
// closed already (client.Pipe closes them as the stream ends), so their
// numbers may belong to a new socket by now and are left alone.
func releaseStdio() {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer null.Close()
	_ = unix.Dup2(int(null.Fd()), 2)
}

// statIdentifiesPipes: a pipe's Stat has its device and inode here, so
// os.SameFile tells two pipes apart.
const statIdentifiesPipes = true

// ownedByMe reports whether path exists and belongs to this process's
// user (or cannot be told).
func ownedByMe(path string) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return true // missing: made by, so owned by, this user
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || int(st.Uid) == os.Getuid()
}

// outliveLogReader keeps the server serving when whatever reads its
// stderr goes away (`sandmux server 2>&1 | logger` whose logger died, a
// supervisor's log pipe that was restarted): by Go's default the next
// log line's write raised SIGPIPE and killed the server outright, every
// session with it and no line said why. Caught rather than ignored, so
// that the programs the embedded SSH server starts get SIGPIPE's
// default back at exec and `yes | head -1` still ends; the write then
// fails with EPIPE and the line is lost instead of the server.
func outliveLogReader() { signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE) }

// errnoIs is errors.Is(err, target): the network's errors are the
// system's own errno values here.
func errnoIs(err error, target syscall.Errno) bool { return errors.Is(err, target) }

// stdoutEPIPE makes a write to a stdout whose reader is gone fail with
// EPIPE rather than kill the process, so that a proxy whose ssh died
// mid-stream ends its stream as it does on Linux (pipeStdio), where its
// stdout writes are raw system calls (mux.Direct) and get EPIPE already.
// Elsewhere (macOS) they go through the *os.File, for which Go raises
// SIGPIPE on descriptor 1: the proxy died at once, its stream neither
// reset nor closed, so the server held the sandbox's sshd connection
// for the whole resume window, and stdin's blocking mode was not put
// back. Caught, not ignored, as outliveLogReader says.
func stdoutEPIPE() { signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE) }

// outliveSuspend keeps a ProxyCommand running when its ssh is suspended.
// Ctrl-Z on an scp, rsync or `ssh host cmd > file` sends SIGTSTP to the
// whole job, and ssh starts its ProxyCommand in ssh's process group, so
// the job includes the proxy: a --no-agent proxy stopped with ssh sent no
// keepalive, so the server dropped its WebSocket within 1.5× its keepalive
// and ended the session once --resume-grace ran out, and after `fg` the
// transfer died with "could not be resumed". Running on, it keeps the
// session alive while ssh's pipes hold the stream still (flow control), as
// the agent does. Caught, not ignored, as outliveLogReader says: the agent
// this process may start gets SIGTSTP's default back at exec.
func outliveSuspend() { signal.Notify(make(chan os.Signal, 1), syscall.SIGTSTP) }

// fdLimit is the process's limit on open file descriptors (the soft one,
// which Go raises to the hard one at start-up).
func fdLimit() (uint64, bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, false
	}
	return uint64(lim.Cur), true // int64 on some BSDs
}

// parentIsSSH reports whether this process's parent is ssh, which runs
// its ProxyCommand with exec.
func parentIsSSH() bool {
	args, err := processArgs(os.Getppid())
	return err == nil && len(args) > 0 && filepath.Base(args[0]) == "ssh"
}
