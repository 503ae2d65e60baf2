//go:build !linux

package sshtest

import "syscall"

// sysProcAttr has no parent-death signal outside Linux; there, only
// t.Cleanup stops sshd.
func sysProcAttr() *syscall.SysProcAttr { return nil }
