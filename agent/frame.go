package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// The agent-to-proxy direction of a stream is framed so that the end of a
// stream can say whether it was clean: a Unix socket's EOF cannot, and a
// proxy must exit non-zero with the reason when its stream was cut.
// Each frame is a 4-byte big-endian word: the top byte is the kind, the
// low 24 bits the length of the payload that follows.
//
// The proxy-to-agent direction is framed the same way (data and EOF
// frames) when both sides agree to it (OpenRequest.FrameIn): a proxy whose
// connection ends without an EOF frame went away or was cut (`forward`'s
// local client reset its connection), and the agent then resets the
// stream rather than finishing it, so that the target cannot take the
// part it got for the whole. A proxy that predates it sends raw bytes.
const (
	frameData  = 0 // payload is stream bytes
	frameEOF   = 1 // the server closed its side: EOF, no payload
	frameError = 2 // the stream was cut: payload is the reason
)

// maxFramePayload is the largest payload one frame carries (24 bits).
const maxFramePayload = 1<<24 - 1

// StreamError is how a proxy learns that the agent cut its stream.
type StreamError struct{ Reason string }

// Error returns the agent's reason.
func (e *StreamError) Error() string { return e.Reason }

// framedWriter is the agent's end of a proxy connection: stream bytes go
// out framed, the proxy's raw bytes come in unframed.
type framedWriter struct {
	conn *net.UnixConn
	mu   sync.Mutex // Write and CloseWrite come from one pipe; end may race with them
	done bool
	// frameIn: the proxy frames its bytes too; in unframes them and
	// inEnded records their EOF frame.
	frameIn bool
	in      unframer
	inEnded bool
	late    bool // an error frame went after the EOF frame (see end)
}

// Read implements io.Reader over the proxy's bytes: an EOF is the end of
// its data, and, when it frames them, a connection that ends without the
// EOF frame is errProxyGone.
func (f *framedWriter) Read(p []byte) (int, error) {
	if !f.frameIn {
		return f.conn.Read(p)
	}
	if f.inEnded {
		return 0, io.EOF
	}
	n, end, err := f.in.read(p)
	switch {
	case end && err == nil:
		f.inEnded = true
		return 0, io.EOF
	case end:
		// A proxy sends no error frames; one that does was cut.
		return 0, fmt.Errorf("%w: %w", errProxyGone, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return n, errProxyGone
	}
	return n, err
}

// Write sends p as data frames, header and payload in one writev.
func (f *framedWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return 0, net.ErrClosed
	}
	return writeFrames(f.conn, p)
}

// writeFrames sends p to c as data frames, header and payload in one
// writev.
func writeFrames(c *net.UnixConn, p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxFramePayload)]
		bufs := net.Buffers{frameHeader(frameData, len(chunk)), chunk}
		if _, err := bufs.WriteTo(c); err != nil {
			return total, err
		}
		total += len(chunk)
		p = p[len(chunk):]
	}
	return total, nil
}

// CloseWrite tells the proxy the server finished sending.
func (f *framedWriter) CloseWrite() error {
	return f.end(frameEOF, "")
}

// Close stops reading from the proxy but keeps the write side open, so that
// finish can still deliver the reason a stream was cut.
func (f *framedWriter) Close() error {
	return f.conn.CloseRead()
}

// finish ends the stream towards the proxy: with the error's text when err
// is non-nil, else with the end of data if CloseWrite has not sent it (a
// stream that cannot half-close, raw mode's, is closed whole by the splice
// once the proxy's side ends), then closes the connection.
func (f *framedWriter) finish(err error) {
	if err != nil {
		_ = f.end(frameError, err.Error())
	} else {
		_ = f.end(frameEOF, "")
	}
	_ = f.conn.Close()
}

func (f *framedWriter) end(kind byte, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case !f.done:
	case kind == frameError && f.frameIn && !f.late:
		// The download ended cleanly, then the upload was cut: a proxy
		// that frames its bytes reads one error frame after the EOF
		// frame (see framedReader.lateVerdict), so that it can tell
		// why rather than a broken pipe.
		f.late = true
	default:
		return nil
	}
	f.done = true
	reason = reason[:min(len(reason), 4096)]
	bufs := net.Buffers{frameHeader(kind, len(reason)), []byte(reason)}
	_, err := bufs.WriteTo(f.conn)
	return err
}

func frameHeader(kind byte, n int) []byte {
	return binary.BigEndian.AppendUint32(make([]byte, 0, 4), uint32(kind)<<24|uint32(n))
}

// framedReader is the proxy's end: it unframes the agent's bytes and turns
// the end frames into io.EOF or a *StreamError. When the agent agreed to
// it (frameIn), it frames its own bytes too.
type framedReader struct {
	*net.UnixConn
	frameIn bool
	in      unframer
	end     error // sticky end of stream
	// ended is closed once end is set, for Write (see there).
	ended chan struct{}
}

func newFramedReader(c *net.UnixConn, frameIn bool) *framedReader {
	return &framedReader{UnixConn: c, frameIn: frameIn, in: unframer{r: c}, ended: make(chan struct{})}
}

// verdictWait is how long a write the agent refused waits for the agent's
// reason to arrive on the read side.
const verdictWait = 2 * time.Second

// Write sends stream bytes to the agent. When the agent cut the stream
// it stops reading first and sends the reason after, so a writer sees a
// broken pipe before the reason arrives; a splice would then end on that
// and lose the reason. A failed write therefore waits (at most
// verdictWait) for the reading side to reach the stream's end, and
// returns a cut's *StreamError instead of its own error; where the
// stream's data had ended cleanly, it looks for the agent's late verdict
// on the upload (see lateVerdict).
func (f *framedReader) Write(p []byte) (int, error) {
	n, err := f.write(p)
	return n, f.verdictOr(err)
}

// verdictOr is a failed write's error: err, or the agent's reason for the
// cut that caused it.
func (f *framedReader) verdictOr(err error) error {
	if err == nil || errors.Is(err, net.ErrClosed) {
		return err
	}
	t := time.NewTimer(verdictWait)
	defer t.Stop()
	select {
	case <-f.ended:
		var se *StreamError
		if errors.As(f.end, &se) {
			return f.end
		}
		if late := f.lateVerdict(t.C); late != nil {
			return late
		}
	case <-t.C:
	}
	return err
}

// lateVerdict reads the error frame that an agent taking frames sends
// after the EOF frame when the upload is cut after the download ended
// (see framedWriter.end), until timeout. Only a writer whose stream's
// data has ended calls it, so no Read runs meanwhile.
func (f *framedReader) lateVerdict(timeout <-chan time.Time) error {
	if !f.frameIn || f.end != io.EOF {
		return nil
	}
	got := make(chan error, 1)
	go func() {
		_, end, err := f.in.read(make([]byte, 1))
		if end && err != nil {
			got <- err
			return
		}
		got <- nil
	}()
	select {
	case err := <-got:
		return err
	case <-timeout:
		_ = f.UnixConn.SetReadDeadline(time.Now()) // ends the read
		<-got
		return nil
	}
}

// write sends p raw, or as data frames when the agent takes them.
func (f *framedReader) write(p []byte) (int, error) {
	if !f.frameIn {
		return f.UnixConn.Write(p)
	}
	return writeFrames(f.UnixConn, p)
}

// CloseWrite ends the stream's data towards the agent: with the EOF frame
// when it takes frames (a close without one is a cut), and a half-close.
func (f *framedReader) CloseWrite() error {
	if f.frameIn {
		if _, err := f.UnixConn.Write(frameHeader(frameEOF, 0)); err != nil {
			return f.verdictOr(err)
		}
	}
	return f.UnixConn.CloseWrite()
}

// setEnd records the stream's end for Read and Write.
func (f *framedReader) setEnd(err error) {
	f.end = err
	close(f.ended)
}

// Read implements io.Reader.
func (f *framedReader) Read(p []byte) (int, error) {
	if f.end != nil {
		return 0, f.end
	}
	n, end, err := f.in.read(p)
	switch {
	case end && err == nil:
		f.setEnd(io.EOF)
		return 0, io.EOF
	case end:
		f.setEnd(err)
		return 0, err
	case err != nil && !errors.Is(err, errBadFrame):
		// Gone without an end frame, or before its reason: a cut all
		// the same, never a clean end. Also ends a writer's wait for a
		// reason.
		err = agentGone(err)
		f.setEnd(err)
	}
	return n, err
}

// unframer reads one direction's frames.
type unframer struct {
	r    io.Reader
	left int // payload bytes of the current data frame not yet read
}

// read reads payload bytes into p. At an end frame it returns end set,
// with a nil error for frameEOF and a *StreamError for frameError. Any
// other error is the connection's own, io.EOF included: the writer went
// away without an end frame. A data frame's last bytes come without the
// connection's EOF, which the next read reports.
func (u *unframer) read(p []byte) (n int, end bool, err error) {
	for u.left == 0 {
		var h [4]byte
		if _, err := io.ReadFull(u.r, h[:]); err != nil {
			return 0, false, err
		}
		word := binary.BigEndian.Uint32(h[:])
		kind, size := byte(word>>24), int(word&maxFramePayload)
		switch kind {
		case frameData:
			u.left = size
		case frameEOF:
			return 0, true, nil
		case frameError:
			msg := make([]byte, size)
			if _, err := io.ReadFull(u.r, msg); err != nil {
				return 0, false, err
			}
			return 0, true, &StreamError{Reason: string(msg)}
		default:
			return 0, false, fmt.Errorf("%w: kind %d", errBadFrame, kind)
		}
	}
	n, err = u.r.Read(p[:min(len(p), u.left)])
	u.left -= n
	switch {
	case errors.Is(err, io.EOF) && u.left > 0:
		err = io.ErrUnexpectedEOF
	case errors.Is(err, io.EOF):
		err = nil
	}
	return n, false, err
}

// agentGone words the agent's connection ending without an end frame,
// cleanly or by a reset (it was killed with bytes unread), as the agent
// having gone away; other errors pass.
func agentGone(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return &StreamError{Reason: errAgentGone}
	}
	return err
}
