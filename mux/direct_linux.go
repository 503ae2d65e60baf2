package mux

import (
	"errors"
	"io"
	"os"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a non-blocking descriptor with raw system calls
// (see Direct), waiting on Go's poller through its RawConn when it would
// block.
type rawIO struct {
	rc syscall.RawConn
	// file: the descriptor is an *os.File, whose RawConn reports a close
	// with an unexported error where its Read says os.ErrClosed.
	file bool
}

// newRawIO returns a rawIO for v's descriptor, or nil when v has none or
// it is in blocking mode (a raw call on it would stall the only thread).
func newRawIO(v any) *rawIO {
	sc, ok := v.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	nonblock := false
	if err := rc.Control(func(fd uintptr) {
		fl, _, e := syscall.RawSyscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		nonblock = e == 0 && fl&syscall.O_NONBLOCK != 0
	}); err != nil || !nonblock {
		return nil
	}
	_, file := v.(*os.File)
	return &rawIO{rc: rc, file: file}
}

// pollErr is err from the poller as the descriptor's own Read or Write
// would report it. A pollable file's RawConn fails only on a deadline or
// because the file was closed.
func (r *rawIO) pollErr(op string, err error) error {
	if r.file && !errors.Is(err, os.ErrDeadlineExceeded) {
		return &os.PathError{Op: op, Path: "pipe", Err: os.ErrClosed}
	}
	return err
}

// read is one read(2), as net.Conn's Read: io.EOF at the end.
func (r *rawIO) read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			r1, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			if e == syscall.EINTR {
				continue
			}
			n, errno = int(r1), e
			return e != syscall.EAGAIN
		}
	})
	switch {
	case err != nil:
		return 0, r.pollErr("read", err)
	case errno != 0:
		return 0, os.NewSyscallError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// writev writes all of bufs, in as few writev(2) calls as the descriptor
// takes, as net.Conn's Write: a short count only with an error.
func (r *rawIO) writev(bufs ...[]byte) (int, error) {
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	done := 0
	var errno syscall.Errno
	iov := make([]syscall.Iovec, 0, len(bufs))
	err := r.rc.Write(func(fd uintptr) bool {
		for done < total {
			iov = iov[:0]
			skip := done
			for _, b := range bufs {
				if skip >= len(b) {
					skip -= len(b)
					continue
				}
				b, skip = b[skip:], 0
				v := syscall.Iovec{Base: &b[0]}
				v.SetLen(len(b))
				iov = append(iov, v)
			}
			r1, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
			switch e {
			case 0:
				done += int(r1)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait until writable
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return done, r.pollErr("write", err)
	case errno != 0:
		return done, os.NewSyscallError("writev", errno)
	}
	return done, nil
}
