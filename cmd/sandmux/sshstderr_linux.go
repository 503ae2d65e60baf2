package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// sshStderr opens the stderr of this process's parent if the parent is
// ssh (which runs its ProxyCommand with exec, so is the parent), or
// returns nil. Whatever ssh's stderr is (a terminal, a pipe, a file, or
// /dev/null under `2>/dev/null`), the line goes where ssh's own go.
func sshStderr() *os.File {
	proc := "/proc/" + strconv.Itoa(os.Getppid())
	comm, err := os.ReadFile(proc + "/comm")
	if err != nil || strings.TrimSpace(string(comm)) != "ssh" {
		return nil
	}
	// Appending, so that a file ssh writes to is not written over.
	f, err := os.OpenFile(proc+"/fd/2", os.O_WRONLY|os.O_APPEND|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil
	}
	return f
}
