package main

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
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

// outliveLogReader: Windows has no SIGPIPE; a write to a closed pipe
// fails with an error.
func outliveLogReader() {}
