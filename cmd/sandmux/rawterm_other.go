//go:build !unix

package main

import "os"

// rawTerminal is false where terminals have no output processing to
// turn off (Windows consoles translate "\n" themselves).
func rawTerminal(*os.File) bool { return false }
