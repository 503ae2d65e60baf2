package client

import (
	"cmp"
	"errors"
	"fmt"
	"io"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/mux"
)

// stdio joins a reader and a writer (a ProxyCommand's stdin and stdout)
// into one half-closable connection for mux.Splice.
type stdio struct {
	in  io.ReadCloser
	out io.WriteCloser
}

func (s stdio) Read(p []byte) (int, error)  { return s.in.Read(p) }
func (s stdio) Write(p []byte) (int, error) { return s.out.Write(p) }

// CloseWrite closes stdout, which is how the process at the other end of
// the pipe (ssh) learns that the stream ended.
func (s stdio) CloseWrite() error { return s.out.Close() }

func (s stdio) Close() error {
	err := s.in.Close()
	if cerr := s.out.Close(); err == nil {
		err = cerr
	}
	return err
}

// Abort ends both as failed where they can: a socket (a forwarded
// connection the agent took over) is reset, so that its peer does not take
// a cut stream's prefix for the whole; a pipe can only be closed.
func (s stdio) Abort() { AbortStdio(s.in, s.out) }

// AbortStdio aborts in and out as stdio's Abort does, out first: when they
// are one socket, in's close wakes a splice reading it, whose own close of
// out would shut it down for writing (a FIN) before out's reset.
func AbortStdio(in io.Closer, out io.Closer) {
	mux.Abort(out)
	mux.Abort(in)
}

// Pipe splices conn to in/out until both directions end, carrying EOF from
// in as a half-close of conn and the end of conn as a close of out. It
// closes conn, in and out before returning. in must unblock its Read when
// closed (a pipe in non-blocking mode does; see cmd/sandmux). Pipes get a
// larger buffer (mux.TunePipe), so bulk data moves in fewer syscalls.
func Pipe(conn io.ReadWriteCloser, in io.ReadCloser, out io.WriteCloser) error {
	mux.TunePipe(in)
	mux.TunePipe(out)
	return mux.Splice(conn, stdio{in: in, out: out})
}

// StreamEndError words, for the user's one line, why a stream ended with
// its session: a session that could not be resumed, or one that ended
// under the stream; or that the server reset it (its target failed).
// Other errors (and nil) are returned as they are. url is the session's
// URL, which the line names for a check with doctor.
func StreamEndError(err error, host, url string) error {
	return streamEndError(err, host, url, "run the command again")
}

// ForwardEndError is StreamEndError for a connection that `sandmux
// forward` carried: the forward goes on, so what to do is to connect
// again, not to run the command again.
func ForwardEndError(err error, host, url string) error {
	return streamEndError(err, host, url, "connect again")
}

// streamEndError is StreamEndError with again, what the user does to try
// once more.
func streamEndError(err error, host, url, again string) error {
	var nr *mux.NotResumedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nr) && nr.Within > 0:
		return fmt.Errorf("session to %s %w; %s once the sandbox answers (`%s` checks it)", host, nr, again, doctorCommand(host, url))
	case errors.As(err, &nr) && errors.Is(nr, mux.ErrUnknownSession):
		// The server ended it (its grace ran out while this side was
		// away: a laptop asleep, an agent or proxy stopped) or restarted:
		// nothing is left to resume, and the next command starts afresh.
		return fmt.Errorf("session to %s %w; %s for a fresh session", host, nr, again)
	case errors.As(err, &nr):
		return fmt.Errorf("session to %s %w", host, nr)
	case errors.Is(err, mux.ErrPeerClosed):
		// END (spec §9.6): the server closes a session with streams open
		// when it shuts down, or (a race) as idle just as one opened.
		return &wordedError{text: fmt.Sprintf("the server closed the session to %s (it is shutting down, or the session was idle past its --idle-timeout); %s in a moment", host, again), err: err}
	case errors.Is(err, ErrNoWelcome):
		// Its words say what happened and what to do; the chain between
		// ("read stream reply: session ended:") says neither.
		return &wordedError{text: fmt.Sprintf("connection to %s lost before the server accepted the session; %s", host, again), err: err}
	case errors.Is(err, mux.ErrSessionEnded), errors.Is(err, mux.ErrSessionDead):
		return fmt.Errorf("connection to %s lost: %w", host, err)
	case errors.Is(err, mux.ErrStreamReset):
		// The connection inside the sandbox failed, not the one to it.
		return fmt.Errorf("%s: %w", host, mux.ErrStreamReset)
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		// A raw connection the server ended with a reason (its shutdown).
		return fmt.Errorf("the server closed the connection to %s: %s", host, cmp.Or(Printable(ce.Reason), ce.Code.String()))
	}
	return err
}

// wordedError is a stream's end said in words of its own that still
// match what it wraps.
type wordedError struct {
	text string
	err  error
}

func (e *wordedError) Error() string { return e.text }

func (e *wordedError) Unwrap() error { return e.err }

// ClosedByServer reports whether err is a raw connection's end by a close
// frame that is not a normal end (those read as io.EOF).
func ClosedByServer(err error) bool {
	var ce websocket.CloseError
	return errors.As(err, &ce)
}

// doctorCommand is the doctor command that checks the server a session
// to host dialled at url. host is what ssh passed (%h), which with a
// block's --strip-suffix and --url left out would make doctor dial
// another URL (wss://8081-abc.e2b.e2b.app for abc.e2b): the URL, already
// expanded, is named, and host is only its label.
func doctorCommand(host, url string) string {
	if url == "" {
		return "sandmux doctor " + host
	}
	return "sandmux doctor --url '" + RedactURL(url) + "' " + host
}
