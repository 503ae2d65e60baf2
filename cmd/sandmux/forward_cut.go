package main

import (
	"errors"
	"io"
	"net"
	"sync/atomic"

	"github.com/sandmux/sandmux/mux"
)

// A forwarded connection whose tunnel stream fails must not end with a
// FIN: its local client would read a clean end after a prefix of the
// data, a truncation it cannot tell from a finished transfer. The stream
// is watched for a failure, and the local connection, closed by the
// splice, is then reset (RST) instead.

// cutWatch is a tunnel stream that notes a failure: an error other than
// the end of its data, and not one that follows the splice's own close
// (after the local side failed, or ended on a stream that cannot
// half-close).
type cutWatch struct {
	net.Conn
	cut     *atomic.Bool
	ended   *atomic.Bool // the stream's data ended cleanly (EOF)
	closing atomic.Bool
}

func (w *cutWatch) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	w.note(err)
	return n, err
}

func (w *cutWatch) Write(p []byte) (int, error) {
	n, err := w.Conn.Write(p)
	w.note(err)
	return n, err
}

func (w *cutWatch) Close() error {
	w.closing.Store(true)
	return w.Conn.Close()
}

func (w *cutWatch) note(err error) {
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		w.ended.Store(true)
	case !w.closing.Load() && !errors.Is(err, net.ErrClosed):
		w.cut.Store(true)
	}
}

// cutWatchHalf is cutWatch over a stream that can half-close, which the
// splice must still see.
type cutWatchHalf struct {
	*cutWatch
	cw interface{ CloseWrite() error }
}

func (w cutWatchHalf) CloseWrite() error { return w.cw.CloseWrite() }

// cutWatchChunks is cutWatchHalf over a stream that lends its chunks
// (mux.ChunkReader), so the splice still copies nothing.
type cutWatchChunks struct {
	cutWatchHalf
	cr mux.ChunkReader
}

func (w cutWatchChunks) ReadChunk() ([]byte, *[]byte, error) {
	b, token, err := w.cr.ReadChunk()
	w.note(err)
	return b, token, err
}

func (w cutWatchChunks) ReleaseChunk(token *[]byte) { w.cr.ReleaseChunk(token) }

// watchCut wraps stream, keeping its half-close and lent chunks if it has
// them.
func watchCut(stream net.Conn, cut, ended *atomic.Bool) net.Conn {
	w := &cutWatch{Conn: stream, cut: cut, ended: ended}
	cw, half := stream.(interface{ CloseWrite() error })
	cr, chunks := stream.(mux.ChunkReader)
	switch {
	case half && chunks:
		return cutWatchChunks{cutWatchHalf{w, cw}, cr}
	case half:
		return cutWatchHalf{w, cw}
	}
	return w
}

// resetClose closes a local connection with a reset where it can.
func resetClose(c net.Conn) {
	if tcp, ok := c.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = c.Close()
}

// resetOnCut is the local connection: closed with a reset once its
// stream has failed.
type resetOnCut struct {
	io.ReadWriteCloser // mux.Direct of the TCP connection
	tcp                *net.TCPConn
	cut                *atomic.Bool
}

func (l resetOnCut) Close() error {
	if l.cut.Load() {
		_ = l.tcp.SetLinger(0)
	}
	return l.ReadWriteCloser.Close()
}

// CloseWrite half-closes the TCP connection (the splice passes an EOF on).
func (l resetOnCut) CloseWrite() error { return l.tcp.CloseWrite() }

// localConn wraps an accepted connection for the splice; anything but TCP
// is used as it is.
func localConn(c net.Conn, cut *atomic.Bool) io.ReadWriteCloser {
	tcp, ok := c.(*net.TCPConn)
	if !ok {
		return mux.Direct(c)
	}
	return resetOnCut{ReadWriteCloser: mux.Direct(c), tcp: tcp, cut: cut}
}
