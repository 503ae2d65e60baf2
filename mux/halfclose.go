package mux

import "io"

// CloseWriteFirst returns rwc with a Close that first shuts it down for
// writing, when it can half-close (a socket). Closing a descriptor does
// not end the peer's reading while another descriptor of the same socket
// stays open (stdin and stdout as one socket, or the process's own 0 and
// 1); a shutdown does.
func CloseWriteFirst(rwc io.ReadWriteCloser) io.ReadWriteCloser { return closeWriteFirst{rwc} }

type closeWriteFirst struct{ io.ReadWriteCloser }

func (c closeWriteFirst) Close() error {
	if cw, ok := c.ReadWriteCloser.(closeWriter); ok {
		_ = cw.CloseWrite()
	}
	return c.ReadWriteCloser.Close()
}

// Abort ends the wrapped connection as failed (see Abort) without Close's
// shutdown: a FIN ahead of the reset would read as the end of the data.
func (c closeWriteFirst) Abort() { Abort(c.ReadWriteCloser) }

// WriteHalf returns the stdout side of rwc, one connection that is also
// stdin (a socket passed as both): its Close shuts rwc down for writing,
// which is how its peer learns that the data ended, and leaves closing
// rwc to the stdin side; where rwc cannot half-close, it does nothing.
// Its Abort aborts rwc (see Abort): a Close there would send a FIN ahead
// of the reset, which the peer may read as the end of the whole data.
func WriteHalf(rwc io.ReadWriteCloser) io.ReadWriteCloser { return writeHalf{rwc} }

type writeHalf struct{ io.ReadWriteCloser }

func (w writeHalf) Close() error {
	if cw, ok := w.ReadWriteCloser.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Abort implements Aborter.
func (w writeHalf) Abort() { Abort(w.ReadWriteCloser) }
