//go:build !linux

package main

// memoryTotal is not read beyond Linux, where sandboxes run.
func memoryTotal() (uint64, bool) { return 0, false }
