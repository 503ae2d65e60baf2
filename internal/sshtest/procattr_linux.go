//go:build linux

package sshtest

import "syscall"

// sysProcAttr makes the kernel stop sshd if the test binary dies without
// running its cleanups (for example on a go test -timeout panic), so CI
// hosts do not accumulate orphaned servers. Pdeathsig fires when the OS
// thread that forked sshd exits; the Go runtime only retires threads whose
// locked goroutine exits, and an unexpected early stop is reported by the
// Start cleanup rather than going unnoticed.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
