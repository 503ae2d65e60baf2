//go:build !linux

package main

import "os"

// sshStderr needs /proc to reach ssh's stderr; elsewhere a proxy under
// ControlPersist stays silent, as README says.
func sshStderr() *os.File { return nil }
