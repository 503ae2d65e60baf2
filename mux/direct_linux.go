package mux

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawIO reads and writes a non-blocking descriptor with raw system calls
// (see Direct), waiting on Go's poller through its RawConn when it would
// block.
type rawIO struct {
	rc syscall.RawConn
	// file, for an *os.File: its RawConn reports a close with an
	// unexported error where its Read says os.ErrClosed.
	file *os.File
	// conn, for a socket: errors are wrapped as its own Read's are.
	conn interface {
		LocalAddr() net.Addr
		RemoteAddr() net.Addr
	}
	// tcp: a TCP socket, whose EOF may hide a reset (see hiddenErr)
	// while its write half is open (finished unset).
	tcp      bool
	finished atomic.Bool
	// taken is the errno of the first write that failed (a write that
	// took the socket's pending error); writing counts the writes now in
	// a system call (see hiddenErr).
	taken   atomic.Int32
	writing atomic.Int32
	// rd and wr hold a read's and a write's arguments and results, their
	// callbacks bound once: a closure made per call, handed to RawConn (an
	// interface) and so to the heap, was about a third of the bytes an upload
	// allocated in the tunnel's processes, and every garbage collection it
	// brought on also emptied the message pools (getMsg).
	rd rawRead
	wr rawWrite
}

// rawRead is rawIO.read's state; mu makes concurrent reads take turns,
// as the descriptor's own read lock does.
type rawRead struct {
	mu    sync.Mutex
	r     *rawIO
	p     []byte
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool // do, bound once
}

// rawWrite is rawIO.writev's state, as rawRead.
type rawWrite struct {
	mu          sync.Mutex
	r           *rawIO
	bufs        [][]byte
	total, done int
	errno       syscall.Errno
	iov         []syscall.Iovec // reused from call to call
	one         [1][]byte       // write's bufs
	fn          func(fd uintptr) bool
}

// newRawIO returns a rawIO for v's descriptor, or nil unless it is a pipe
// or a socket in non-blocking mode that Go's poller watches. A raw call
// on a blocking descriptor would stall the only thread; an unwatched one
// (a descriptor already registered through another *os.File) could not
// be waited on; anything else (a terminal, shared with other processes
// that may change its mode) is not worth the risk.
func newRawIO(v any) *rawIO {
	sc, ok := v.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	usable := false
	if err := rc.Control(func(fd uintptr) {
		var st syscall.Stat_t
		if syscall.Fstat(int(fd), &st) != nil {
			return
		}
		if t := st.Mode & syscall.S_IFMT; t != syscall.S_IFIFO && t != syscall.S_IFSOCK {
			return
		}
		fl, _, e := syscall.RawSyscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		usable = e == 0 && fl&syscall.O_NONBLOCK != 0
	}); err != nil || !usable {
		return nil
	}
	r := &rawIO{rc: rc}
	r.rd.r, r.rd.fn = r, r.rd.do
	r.wr.r, r.wr.fn = r, r.wr.do
	switch c := v.(type) {
	case *os.File:
		if errors.Is(c.SetReadDeadline(time.Time{}), os.ErrNoDeadline) {
			return nil // not watched by the poller
		}
		r.file = c
	case net.Conn:
		r.conn = c
		_, r.tcp = c.LocalAddr().(*net.TCPAddr) // also through a wrapper (Guarded)
	}
	return r
}

// pollErr is err from the poller as the descriptor's own Read or Write
// would report it. A watched file's RawConn fails only on a deadline or
// because the file was closed.
func (r *rawIO) pollErr(op string, err error) error {
	var oe *net.OpError
	switch {
	case r.file != nil && !errors.Is(err, os.ErrDeadlineExceeded):
		return &os.PathError{Op: op, Path: r.file.Name(), Err: os.ErrClosed}
	case errors.As(err, &oe):
		oe.Op = op // "raw-read" otherwise
	}
	return err
}

// sysErr is a failed system call as the descriptor's own Read or Write
// would report it: a *net.OpError for a socket (a net.Error, so a
// keepalive's ETIMEDOUT is a timeout), an *os.PathError for a file.
func (r *rawIO) sysErr(op string, errno syscall.Errno) error {
	switch {
	case r.conn != nil:
		return &net.OpError{Op: op, Net: r.conn.LocalAddr().Network(), Source: r.conn.LocalAddr(), Addr: r.conn.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
	case r.file != nil:
		return &os.PathError{Op: op, Path: r.file.Name(), Err: errno}
	}
	return os.NewSyscallError(op, errno)
}

// read is one read(2), as net.Conn's Read: io.EOF at the end.
func (r *rawIO) read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	op := &r.rd
	op.mu.Lock()
	op.p = p
	err := r.rc.Read(op.fn)
	n, errno := op.n, op.errno
	op.p, op.n, op.errno = nil, 0, 0 // pins no caller's buffer
	op.mu.Unlock()
	switch {
	case err != nil:
		return 0, r.pollErr("read", err)
	case errno != 0:
		return 0, r.sysErr("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// do is read's RawConn callback.
func (op *rawRead) do(fd uintptr) bool {
	for {
		r1, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&op.p[0])), uintptr(len(op.p)))
		if e == syscall.EINTR {
			continue
		}
		op.n, op.errno = int(r1), e
		if e == 0 && op.n == 0 && op.r.tcp && !op.r.finished.Load() {
			op.errno = op.r.hiddenErr(fd)
		}
		return e != syscall.EAGAIN
	}
}

// finish records that the write half is being closed (see hiddenErr).
func (r *rawIO) finish() { r.finished.Store(true) }

// hiddenErr returns the error that an EOF read on a TCP socket, its
// write half still open, hides, or 0 for a true end. Linux reports a
// socket's error (a reset, a timeout) to one system call only; when a
// write of the other direction's copy took it, the read that follows sees
// an EOF, which a splice would pass on as the clean end of a transfer the
// peer aborted. With its write half open, a socket whose peer finished
// (FIN) is in CLOSE_WAIT, and one that was reset or timed out is CLOSED.
// A CLOSED one is still a true end when the peer had finished before the
// reset (it closed, and a write of ours drew the reset): the kernel then
// gives the error as EPIPE, not ECONNRESET, whether still pending or
// taken by a write.
func (r *rawIO) hiddenErr(fd uintptr) syscall.Errno {
	info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	// finished is loaded after the state: CloseWrite stores it before
	// its FIN, which is what can make a finished socket CLOSED.
	if err != nil || info.State != tcpClosed || r.finished.Load() {
		return 0
	}
	if e, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR); err == nil && e != 0 {
		if syscall.Errno(e) == syscall.EPIPE {
			return 0
		}
		return syscall.Errno(e)
	}
	for r.writing.Load() != 0 { // a write that took the error records it
		runtime.Gosched()
	}
	switch e := syscall.Errno(r.taken.Load()); e {
	case 0:
		return syscall.ECONNRESET // taken by a write not made through r
	case syscall.EPIPE:
		return 0
	default:
		return e
	}
}

// tcpClosed is the kernel's TCP_CLOSE state.
const tcpClosed = 7

// writev writes all of bufs, in as few writev(2) calls as the descriptor
// takes, as net.Conn's Write: a short count only with an error.
func (r *rawIO) writev(bufs ...[]byte) (int, error) {
	r.wr.mu.Lock()
	defer r.wr.mu.Unlock()
	return r.writeLocked(bufs)
}

// write is writev of one buffer, without a slice made for it per call.
func (r *rawIO) write(p []byte) (int, error) {
	r.wr.mu.Lock()
	defer r.wr.mu.Unlock()
	r.wr.one[0] = p
	n, err := r.writeLocked(r.wr.one[:])
	r.wr.one[0] = nil
	return n, err
}

// writeLocked is writev; the caller holds wr.mu.
func (r *rawIO) writeLocked(bufs [][]byte) (int, error) {
	op := &r.wr
	op.bufs, op.total = bufs, 0
	for _, b := range bufs {
		op.total += len(b)
	}
	err := r.rc.Write(op.fn)
	done, errno := op.done, op.errno
	clear(op.iov[:cap(op.iov)]) // pins no caller's buffer
	op.bufs, op.done, op.errno = nil, 0, 0
	switch {
	case err != nil:
		return done, r.pollErr("write", err)
	case errno != 0:
		return done, r.sysErr("write", errno)
	}
	return done, nil
}

// do is writev's RawConn callback.
func (op *rawWrite) do(fd uintptr) bool {
	r := op.r
	for op.done < op.total {
		iov := op.iov[:0]
		skip := op.done
		for _, b := range op.bufs {
			if skip >= len(b) {
				skip -= len(b)
				continue
			}
			b, skip = b[skip:], 0
			v := syscall.Iovec{Base: &b[0]}
			v.SetLen(len(b))
			iov = append(iov, v)
		}
		op.iov = iov
		r.writing.Add(1)
		r1, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		if e != 0 && e != syscall.EINTR && e != syscall.EAGAIN {
			r.taken.CompareAndSwap(0, int32(e))
		}
		r.writing.Add(-1)
		switch e {
		case 0:
			op.done += int(r1)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait until writable
		default:
			op.errno = e
			return true
		}
	}
	return true
}
