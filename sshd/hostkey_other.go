//go:build !unix

package sshd

import "io/fs"

// checkKeyMode accepts every key: Windows has no Unix modes to check,
// and a file's ACL is not what fi.Mode reports.
func checkKeyMode(string, fs.FileInfo) error { return nil }
