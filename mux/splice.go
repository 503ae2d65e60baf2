package mux

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// A copy reads into a small buffer, and into a large one while reads fill
// the small one: a bulk transfer then moves in reads (and frames) of up to
// 256 KiB, each costing a syscall and a wake-up whatever its size, while an
// idle or interactive stream, whose last read was short, holds only the
// small one as it waits. Both are pooled.
const (
	smallCopyBuf = 32 << 10
	largeCopyBuf = 256 << 10
)

var (
	smallBufPool = sync.Pool{New: func() any { b := make([]byte, smallCopyBuf); return &b }}
	largeBufPool = sync.Pool{New: func() any { b := make([]byte, largeCopyBuf); return &b }}
)

// ChunkReader is a source that lends out the buffers its bytes were
// received into, so that a copy writes them on without first copying them
// into a buffer of its own. Stream is one; a wrapper of a Stream that
// changes how its reads end must wrap ReadChunk the same way, because
// Splice prefers ReadChunk to Read.
type ChunkReader interface {
	// ReadChunk returns the next received bytes, which stay the
	// caller's until ReleaseChunk(token). Errors are those of Read, and
	// bytes may come with one, as from Read.
	ReadChunk() (b []byte, token *[]byte, err error)
	// ReleaseChunk gives a chunk back; nil is ignored.
	ReleaseChunk(token *[]byte)
}

// closeWriter is a connection that can half-close: TCP, Unix sockets and
// Stream.
type closeWriter interface {
	CloseWrite() error
}

// Splice copies a to b and b to a until both directions are done, carrying
// half-close: when one side reads EOF, the other side's write half is
// closed (or the whole connection, where it cannot half-close) and the
// opposite direction goes on. The first real error ends both sides at once
// and is returned; errors caused by that end are not. The side that failed
// is closed and the other is aborted (see Abort): a reset, not an end, is
// what a cut must pass on, or the far end would take the part it got for
// the whole. A side whose data had all gone out, its end included, is
// ended without losing any of it instead (closeFinished). Both a and b are
// closed when Splice returns.
func Splice(a, b io.ReadWriteCloser) error {
	var (
		once     sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	sides := [2]io.ReadWriteCloser{a, b}
	// fail ends both sides: sides[failed] is closed and the other aborted,
	// or both closed when failed is neither (the splice is just over).
	// (Indices, not the sides: a side's type need not be comparable.)
	const neither = -1
	// finished[i]: everything bound for sides[i] was written and its
	// write side closed (a FIN is on its way). Such a side is not aborted
	// outright when the other fails: its peer already has all the data
	// and its end, and a reset at the wrong moment would throw away what
	// is still in flight to it (see closeFinished).
	var finished [2]atomic.Bool
	fail := func(err error, failed int) {
		once.Do(func() {
			firstErr = err
			if failed == neither {
				_ = a.Close()
				_ = b.Close()
				return
			}
			// The failed side first: aborting the other may take a
			// while (a WebSocket's close handshake).
			_ = sides[failed].Close()
			if other := 1 - failed; finished[other].Load() {
				closeFinished(sides[other])
			} else {
				Abort(sides[other])
			}
		})
	}
	// A write that fails on a side ends only the direction into it (see
	// writeFailure).
	pending := writeFailure{fail: fail}
	pipe := func(dst, src int) {
		defer wg.Done()
		if dstFailed, err := copyStream(sides[dst], sides[src]); err != nil {
			if dstFailed {
				pending.record(err, dst)
			} else {
				fail(err, src)
			}
			return
		}
		if cw, ok := sides[dst].(closeWriter); ok {
			// Marked before its FIN goes, so that a failure racing the
			// FIN cannot reset a side whose data all went out.
			finished[dst].Store(true)
			if err := cw.CloseWrite(); err != nil && !isClosed(err) {
				fail(err, dst)
			}
			return
		}
		// dst cannot half-close, so the only way to pass the EOF on is to
		// close it; that ends the other direction too (and is its end,
		// where the other direction's write had failed).
		if side, err := pending.take(); err != nil {
			finished[dst].Store(true)
			fail(err, side)
			return
		}
		fail(nil, neither)
	}
	wg.Add(2)
	go pipe(1, 0)
	go pipe(0, 1)
	wg.Wait()
	// A write failure whose other direction then ended cleanly: the
	// failed side is closed, the finished one ended by closeFinished.
	if side, err := pending.take(); err != nil {
		fail(err, side)
	}
	once.Do(func() {})
	_ = a.Close()
	_ = b.Close()
	return firstErr
}

// writeFailure holds the first write that failed in a Splice. A write
// that fails on a side ends only the direction into it: what that side
// still sends may yet end cleanly (its peer sent everything and closed,
// and our write drew the failure), and whether the other side is then
// closed or aborted depends on it. The other direction gets drainGrace to
// reach its end; failing that, the write's error ends both.
type writeFailure struct {
	fail func(err error, failed int) // Splice's, which ends both sides

	mu    sync.Mutex
	err   error
	side  int
	timer *time.Timer
}

// record notes that writing to sides[side] failed with err. A second
// failure means neither side takes data any more: both end at once, told
// by the first.
func (w *writeFailure) record(err error, side int) {
	w.mu.Lock()
	both := w.err != nil
	if !both {
		w.err, w.side = err, side
		w.timer = time.AfterFunc(drainGrace, func() { w.fail(err, side) })
	} else {
		err, side = w.err, w.side // the first failure is the one to tell
	}
	w.mu.Unlock()
	if both {
		w.fail(err, side)
	}
}

// take stops the drain timer and returns the recorded failure, if any.
func (w *writeFailure) take() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
	}
	return w.side, w.err
}

// drainGrace bounds how long, after a write to one side failed, the
// other direction may take to reach its end (see Splice).
const drainGrace = 10 * time.Second

// closeFinished ends a side whose data all went out, its end included,
// when the other side has failed, so that its peer's writes fail as they
// would against a closed TCP socket, without costing its reads anything.
// A TCP socket closed while it holds unread bytes (its peer still talking)
// is reset by the kernel, which throws away what it has not sent yet: so
// its send queue is first given the time to drain, while its peer keeps
// taking it (awaitSent). A stream is reset: its data and FIN went out
// before, so its peer reads them all and then the end, and only its
// writes fail (where closed, they would go on unread until the close
// timeout).
func closeFinished(c io.Closer) {
	if _, ok := unwatched(c).(interface{ finishedStream() }); ok {
		Abort(c)
		return
	}
	awaitSent(c)
	_ = c.Close()
}

// copyStream copies until EOF with pooled buffers (see smallCopyBuf). It
// deliberately avoids io.Copy's ReaderFrom/WriterTo shortcuts, whose
// buffer sizes and write patterns it cannot control. dstFailed tells
// whether err came from writing dst rather than reading src.
func copyStream(dst io.Writer, src io.Reader) (dstFailed bool, err error) {
	if cr, ok := src.(ChunkReader); ok {
		return copyChunks(dst, cr)
	}
	bp, pool := smallBufPool.Get().(*[]byte), &smallBufPool
	defer func() { pool.Put(bp) }()
	for {
		n, rerr := src.Read(*bp)
		if n > 0 {
			if _, werr := dst.Write((*bp)[:n]); werr != nil {
				return true, werr
			}
		}
		switch {
		case n == smallCopyBuf && pool == &smallBufPool:
			pool.Put(bp)
			bp, pool = largeBufPool.Get().(*[]byte), &largeBufPool
		case n < smallCopyBuf && pool == &largeBufPool:
			pool.Put(bp)
			bp, pool = smallBufPool.Get().(*[]byte), &smallBufPool
		}
		if rerr == io.EOF {
			return false, nil
		}
		if rerr != nil {
			return false, rerr
		}
	}
}

// copyChunks copies until EOF, writing each chunk src lends where it was
// received: one write per received frame, and no copy.
func copyChunks(dst io.Writer, src ChunkReader) (dstFailed bool, err error) {
	for {
		b, token, rerr := src.ReadChunk()
		var werr error
		if len(b) > 0 {
			_, werr = dst.Write(b)
		}
		src.ReleaseChunk(token)
		switch {
		case werr != nil:
			return true, werr
		case rerr == io.EOF:
			return false, nil
		case rerr != nil:
			return false, rerr
		}
	}
}

// isClosed reports whether err means the connection was already closed.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) || errors.Is(err, io.ErrClosedPipe)
}
