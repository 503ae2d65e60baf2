package main

import (
	"io"
	"net"
	"os"

	"github.com/sandmux/sandmux/agent"
	"github.com/sandmux/sandmux/mux"
)

// proxyStdio returns stdin and stdout for a proxy that copies the stream
// itself, and restore, which puts back the blocking mode they had and is
// to be called once both are closed.
func proxyStdio() (in, out io.ReadWriteCloser, restore func()) {
	if sameFile(os.Stdin, os.Stdout) {
		c, restore, ok := socketStdio()
		if !ok {
			// Not a socket Go can wrap (a vsock, a FIFO opened for
			// both): one descriptor for both ways all the same.
			c, restore = pollable(os.Stdin, "/dev/stdin")
		}
		// The stdin side's Close shuts a socket down first, so that a
		// stream cut with an error ends the reader's side at once, not
		// when this process exits with descriptors 0 and 1.
		return mux.CloseWriteFirst(c), mux.WriteHalf(c), restore
	}
	in, restoreIn := pollable(os.Stdin, "/dev/stdin")
	out, restoreOut := pollable(os.Stdout, "/dev/stdout")
	// Each is restored as it closes: ssh must see stdout's EOF then.
	return mux.RestoreOnClose(in, restoreIn), mux.RestoreOnClose(out, restoreOut),
		func() { restoreIn(); restoreOut() }
}

// socketStdio is stdin and stdout when they are one socket (socat's EXEC,
// inetd): one connection of its own, made non-blocking for the poller,
// read for stdin and written, then shut down for writing, for stdout.
// Made from os.Stdin and os.Stdout each, as for two pipes, the second
// would find the file non-blocking already but unknown to the poller, and
// a write to a full socket failed with EAGAIN.
func socketStdio() (c io.ReadWriteCloser, restore func(), ok bool) {
	fi, err := os.Stdin.Stat()
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil, nil, false
	}
	restore = func() {}
	if !isNonblock(os.Stdin) {
		restore = mux.RestoreBlocking(os.Stdin.Fd()) // blocking, so Fd changes nothing
	}
	nc, err := net.FileConn(os.Stdin) // a non-blocking duplicate
	if err != nil {
		restore()
		return nil, nil, false
	}
	if _, ok := nc.(interface{ CloseWrite() error }); !ok {
		_ = nc.Close()
		restore()
		return nil, nil, false
	}
	return mux.Direct(nc), restore, true
}

// pollable returns f (stdin or stdout) in non-blocking mode when it is a
// pipe or socket (as under ssh), so that Go's poller waits on it: closing
// stdin then unblocks a pending Read when the stream ends first, and
// mux.Direct can read and write it with raw system calls. restore puts
// the blocking mode back once f is closed (mux.RestoreBlocking): the mode
// is shared with whoever else reads or writes the same pipe. A terminal
// is left alone.
//
// A descriptor already non-blocking when the process started is returned
// as it is: the runtime registered it with the poller then, and a second
// *os.File for it could not be.
func pollable(f *os.File, name string) (rwc io.ReadWriteCloser, restore func()) {
	if !agent.Handoffable(f) || isNonblock(f) {
		return mux.Direct(f), func() {}
	}
	fd := f.Fd() // f is blocking, so Fd changes nothing
	if err := setNonblock(fd); err != nil {
		return f, func() {}
	}
	return mux.Direct(os.NewFile(fd, name)), mux.RestoreBlocking(fd)
}

// sameFile reports whether a and b are one file (a socket passed as both
// stdin and stdout), or neither can be looked at. One that cannot (closed)
// is not the other: taking a closed stdout for stdin would write the
// stream's bytes to stdin. Nor is a pipe or a terminal where Stat cannot
// tell them apart (statIdentifiesPipes).
func sameFile(a, b *os.File) bool {
	sa, errA := a.Stat()
	sb, errB := b.Stat()
	if errA != nil || errB != nil {
		return errA != nil && errB != nil
	}
	if !statIdentifiesPipes && (unidentified(sa) || unidentified(sb)) {
		return false
	}
	return os.SameFile(sa, sb)
}

// unidentified reports whether fi is a pipe or a device, which Windows's
// Stat gives no file ID: os.SameFile takes any two of them for one.
func unidentified(fi os.FileInfo) bool {
	return fi.Mode()&(os.ModeNamedPipe|os.ModeDevice|os.ModeCharDevice) != 0
}
