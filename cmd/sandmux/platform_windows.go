package main

import (
	"errors"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/windows"
)

// agentSupported: the shared agent needs flock, SO_PEERCRED and setsid,
// which Windows lacks; every command dials its own session there.
const agentSupported = false

func detach(*exec.Cmd) {}

func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	_ = p.Release()
	return true
}

func setNonblock(uintptr) error { return errors.ErrUnsupported }

func isNonblock(*os.File) bool { return false }

// terminateSignals: Go delivers a console window's closing, a logoff and
// a shutdown as SIGTERM on Windows.
var terminateSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}

func forwardAlive(pid int) bool { return processAlive(pid) }

// releaseStdio does nothing on Windows, where a process's standard
// handles cannot be swapped under the runtime this way.
func releaseStdio() {}

func ownedByMe(string) bool { return true }

// statIdentifiesPipes: Stat gives a pipe or a console no file ID here, so
// os.SameFile takes any two of them for one file (golang.org/issue/62042),
// and a proxy whose stdin and stdout are ssh's two pipes wrote the stream
// to its stdin. A handle that is both is used as two all the same.
const statIdentifiesPipes = false

// stdoutEPIPE: Windows has no SIGPIPE (see outliveLogReader).
func stdoutEPIPE() {}

// outliveLogReader: Windows has no SIGPIPE; a write to a closed pipe
// fails with an error.
func outliveLogReader() {}

// errnoIs is errors.Is(err, target), or err is Winsock's code for target:
// Go's network errors on Windows are WSAE* codes, which the syscall
// package's Unix-named errno values (invented there) never match, so a
// port in use, or a refused connection, got the hint for a malformed
// address or a generic one.
func errnoIs(err error, target syscall.Errno) bool {
	if errors.Is(err, target) {
		return true
	}
	wsa, ok := map[syscall.Errno]syscall.Errno{
		syscall.EADDRINUSE:    windows.WSAEADDRINUSE,
		syscall.EADDRNOTAVAIL: windows.WSAEADDRNOTAVAIL,
		syscall.ECONNREFUSED:  windows.WSAECONNREFUSED,
		syscall.ECONNRESET:    windows.WSAECONNRESET,
		syscall.EACCES:        windows.WSAEACCES,
	}[target]
	return ok && errors.Is(err, wsa)
}

// outliveSuspend: Windows has no job-control signals.
func outliveSuspend() {}

// fdLimit: Windows has no such per-process limit on sockets.
func fdLimit() (uint64, bool) { return 0, false }

// parentIsSSH is false on Windows, whose OpenSSH has no ProxyUseFdpass.
func parentIsSSH() bool { return false }
