//go:build !linux

package mux

// TunePipe does nothing here: only Linux can resize a pipe's buffer.
func TunePipe(any) {}
