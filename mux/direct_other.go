//go:build !linux

package mux

import "syscall"

// rawIO is Linux only; elsewhere Direct and BufConn use the descriptor's
// own Read and Write.
type rawIO struct{ rc syscall.RawConn }

func newRawIO(any) *rawIO { return nil }

func (r *rawIO) read([]byte) (int, error)      { panic("unreachable") }
func (r *rawIO) writev(...[]byte) (int, error) { panic("unreachable") }
func (r *rawIO) write([]byte) (int, error)     { panic("unreachable") }
func (r *rawIO) finish()                       { panic("unreachable") }
