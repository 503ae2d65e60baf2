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

// errBadFrame means the agent sent a frame this proxy does not understand.
var errBadFrame = errors.New("malformed frame from agent")

// framedWriter is the agent's end of a proxy connection: stream bytes go
// out framed, the proxy's raw bytes come in unframed.
type framedWriter struct {
	conn *net.UnixConn
	mu   sync.Mutex // Write and CloseWrite come from one pipe; end may race with them
	done bool
}

// Read implements io.Reader over the proxy's raw bytes.
func (f *framedWriter) Read(p []byte) (int, error) { return f.conn.Read(p) }

// Write sends p as data frames, header and payload in one writev.
func (f *framedWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return 0, net.ErrClosed
	}
	total := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxFramePayload)]
		bufs := net.Buffers{frameHeader(frameData, len(chunk)), chunk}
		if _, err := bufs.WriteTo(f.conn); err != nil {
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
	if f.done {
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
// the end frames into io.EOF or a *StreamError.
type framedReader struct {
	*net.UnixConn
	left int   // payload bytes of the current data frame not yet read
	end  error // sticky end of stream
	// ended is closed once end is set, for Write (see there).
	ended chan struct{}
}

func newFramedReader(c *net.UnixConn) *framedReader {
	return &framedReader{UnixConn: c, ended: make(chan struct{})}
}

// verdictWait is how long a write the agent refused waits for the agent's
// reason to arrive on the read side.
const verdictWait = 2 * time.Second

// Write sends stream bytes to the agent. When the agent cut the stream
// it stops reading first and sends the reason after, so a writer sees a
// broken pipe before the reason arrives; a splice would then end on that
// and lose the reason. A failed write therefore waits (at most
// verdictWait) for the reading side to reach the stream's end, and
// returns a cut's *StreamError instead of its own error.
func (f *framedReader) Write(p []byte) (int, error) {
	n, err := f.UnixConn.Write(p)
	if err == nil || errors.Is(err, net.ErrClosed) {
		return n, err
	}
	t := time.NewTimer(verdictWait)
	defer t.Stop()
	select {
	case <-f.ended:
		var se *StreamError
		if errors.As(f.end, &se) {
			return n, f.end
		}
	case <-t.C:
	}
	return n, err
}

// setEnd records the stream's end for Read and Write.
func (f *framedReader) setEnd(err error) {
	f.end = err
	close(f.ended)
}

// Read implements io.Reader.
func (f *framedReader) Read(p []byte) (int, error) {
	for f.left == 0 {
		if f.end != nil {
			return 0, f.end
		}
		var h [4]byte
		if _, err := io.ReadFull(f.UnixConn, h[:]); err != nil {
			err = agentGone(err)
			f.setEnd(err) // also ends a writer's wait for a reason
			return 0, err
		}
		word := binary.BigEndian.Uint32(h[:])
		kind, n := byte(word>>24), int(word&maxFramePayload)
		switch kind {
		case frameData:
			f.left = n
		case frameEOF:
			f.setEnd(io.EOF)
		case frameError:
			msg := make([]byte, n)
			if _, err := io.ReadFull(f.UnixConn, msg); err != nil {
				// Gone before its reason: a cut all the same, never a
				// clean end.
				err = agentGone(err)
				f.setEnd(err)
				return 0, err
			}
			f.setEnd(&StreamError{Reason: string(msg)})
		default:
			return 0, fmt.Errorf("%w: kind %d", errBadFrame, kind)
		}
	}
	n, err := f.UnixConn.Read(p[:min(len(p), f.left)])
	f.left -= n
	if err != nil && (!errors.Is(err, io.EOF) || f.left > 0) {
		err = agentGone(err)
	}
	return n, err
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
