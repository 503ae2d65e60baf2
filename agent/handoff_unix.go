//go:build !windows

package agent

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/sandmux/sandmux/mux"
	"golang.org/x/sys/unix"
)

// sendFiles passes the descriptors of files over c in one message.
func sendFiles(c *net.UnixConn, files ...*os.File) error {
	fds := make([]int, 0, len(files))
	for _, f := range files {
		raw, err := f.SyscallConn()
		if err != nil {
			return fmt.Errorf("hand %s to the agent: %w", f.Name(), err)
		}
		if err := raw.Control(func(fd uintptr) { fds = append(fds, int(fd)) }); err != nil {
			return fmt.Errorf("hand %s to the agent: %w", f.Name(), err)
		}
	}
	// Control's fds stay valid because files stay open until after the send.
	if _, _, err := c.WriteMsgUnix([]byte{0}, syscall.UnixRights(fds...), nil); err != nil {
		return fmt.Errorf("hand stdin and stdout to the sandmux agent: %w", err)
	}
	return nil
}

// recvStdio receives the proxy's stdin and stdout and wraps them for
// polling: the stream's reads and writes must not tie up a thread each.
// restore puts back the blocking mode this changed, and must be called
// once both are closed (each already does so as it closes unless stdin and
// stdout are one file).
func recvStdio(c *net.UnixConn) (in io.ReadCloser, out io.WriteCloser, restore func(), err error) {
	fds, err := recvFDs(c, 2, "stdin and stdout")
	if err != nil {
		return nil, nil, nil, err
	}
	if sameSocket(fds[0], fds[1]) {
		return oneSocket(fds)
	}
	apart := !sameFile(fds[0], fds[1])
	pin, restoreIn, err := pollable(fds[0], "stdin")
	if err != nil {
		closeFDs(fds[1:])
		return nil, nil, nil, err
	}
	pout, restoreOut, err := pollable(fds[1], "stdout")
	if err != nil {
		_ = pin.Close()
		restoreIn()
		return nil, nil, nil, err
	}
	if apart {
		// Each is restored as it closes: ssh must see stdout's EOF then.
		pin, pout = mux.RestoreOnClose(pin, restoreIn), mux.RestoreOnClose(pout, restoreOut)
	}
	// A socket's shutdown reaches its reader whatever other descriptors
	// of it stay open; a close may not.
	return pin, mux.CloseWriteFirst(pout), func() { restoreIn(); restoreOut() }, nil
}

// oneSocket is recvStdio's stdin and stdout when both are one socket (a
// forwarded TCP connection, an --fdpass proxy's socket): one connection,
// read as stdin, whose stdout (mux.WriteHalf) only shuts it down for
// writing. Two, one per descriptor, did not know of each other: stdin's
// read of the peer's FIN after stdout had sent ours found the socket
// CLOSED, which on a TCP socket whose write half it thought open means a
// reset the other had taken (mux.Direct), so a forward whose target ended
// first reset the target after the client's last byte instead of passing
// on its FIN.
func oneSocket(fds []int) (in io.ReadCloser, out io.WriteCloser, restore func(), err error) {
	closeFDs(fds[1:])
	conn, restore, err := pollable(fds[0], "stdin and stdout")
	if err != nil {
		return nil, nil, nil, err
	}
	return conn, mux.WriteHalf(conn), restore, nil
}

// recvFDs receives one message of the proxy's that carries n
// descriptors (what, for the error), each close-on-exec.
func recvFDs(c *net.UnixConn, n int, what string) ([]int, error) {
	var b [1]byte
	oob := make([]byte, syscall.CmsgSpace(n*4))
	_, oobn, flags, _, err := c.ReadMsgUnix(b[:], oob)
	if err != nil {
		return nil, err
	}
	// The kernel writes the control buffer, so it parses; descriptors that
	// did not fit (MSG_CTRUNC) were closed by the kernel, not passed.
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		got, err := syscall.ParseUnixRights(&m)
		if err == nil {
			fds = append(fds, got...)
		}
	}
	if flags&syscall.MSG_CTRUNC != 0 || len(fds) != n {
		closeFDs(fds)
		if flags&syscall.MSG_CTRUNC != 0 {
			// The kernel drops what it cannot install: the agent is at
			// its descriptor limit (every stream handed off holds two).
			return nil, &fdLimitError{limit: fdLimit()}
		}
		return nil, fmt.Errorf("expected %s, got %d descriptors", what, len(fds))
	}
	for _, fd := range fds {
		syscall.CloseOnExec(fd)
	}
	return fds, nil
}

// recvFile receives one descriptor (what, for the error) as a file.
func recvFile(c *net.UnixConn, what string) (*os.File, error) {
	fds, err := recvFDs(c, 1, what)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fds[0]), what), nil
}

// sameFile reports whether descriptors a and b are the same file (one
// socket passed as both stdin and stdout), or cannot be told apart.
func sameFile(a, b int) bool {
	var sa, sb syscall.Stat_t
	if syscall.Fstat(a, &sa) != nil || syscall.Fstat(b, &sb) != nil {
		return true
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// sameSocket reports whether descriptors a and b are one socket.
func sameSocket(a, b int) bool {
	var st syscall.Stat_t
	return syscall.Fstat(a, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFSOCK && sameFile(a, b)
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		_ = syscall.Close(fd)
	}
}

// errNotPollable means a handed descriptor is neither a pipe nor a socket.
var errNotPollable = errors.New("is neither a pipe nor a socket")

// pollable turns fd into a non-blocking net.Conn (socket) or *os.File
// (pipe), so that Close unblocks a pending Read. It owns fd, which it
// closes on failure. The mode is shared with ssh's descriptor and anyone
// else's: restore, called once the stream is done with fd, puts it back
// as it was (mux.RestoreBlocking).
func pollable(fd int, name string) (rwc io.ReadWriteCloser, restore func(), err error) {
	syscall.CloseOnExec(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		_ = syscall.Close(fd)
		return nil, nil, fmt.Errorf("proxy's %s: %w", name, err)
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		_ = syscall.Close(fd)
		return nil, nil, fmt.Errorf("proxy's %s: %w", name, err)
	}
	restore = func() {}
	if fl&unix.O_NONBLOCK == 0 {
		restore = mux.RestoreBlocking(uintptr(fd))
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFSOCK:
		f := os.NewFile(uintptr(fd), name)
		nc, err := net.FileConn(f) // a dup, made non-blocking: f's own descriptor goes
		_ = f.Close()
		if err != nil {
			restore()
			return nil, nil, fmt.Errorf("proxy's %s: %w", name, err)
		}
		// Guarded: a TCP connection (a forward's) is reset, not ended,
		// should the agent die holding it; its only descriptors are the
		// agent's, so the kernel's close on its death would send a FIN.
		return mux.Guarded(nc), restore, nil
	case syscall.S_IFIFO:
		if err := syscall.SetNonblock(fd, true); err != nil {
			_ = syscall.Close(fd)
			restore()
			return nil, nil, fmt.Errorf("proxy's %s: %w", name, err)
		}
		f := os.NewFile(uintptr(fd), name)
		// Here, not in client.Pipe: stdout reaches it wrapped in
		// mux.CloseWriteFirst, which hides the descriptor, and an
		// untuned stdout moved 64 KiB per syscall, costing downloads a
		// fifth.
		mux.TunePipe(f)
		return mux.Direct(f), restore, nil
	}
	_ = syscall.Close(fd)
	restore()
	return nil, nil, fmt.Errorf("proxy's %s %w", name, errNotPollable)
}
