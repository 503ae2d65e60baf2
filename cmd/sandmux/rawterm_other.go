//go:build !unix && !windows

package main

import "os"

// rawTerminal is false where terminals have no output processing to
// turn off.
func rawTerminal(*os.File) bool { return false }
