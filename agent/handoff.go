package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/mux"
)

// Hand-off: a proxy whose stdin and stdout are pipes or sockets (as under
// ssh's ProxyCommand) passes both descriptors to the agent, which splices
// the stream to them itself. The proxy stays ssh's child only to report
// how the stream ended. Without it every byte crossed one more process:
// two more copies, two more syscalls and the wake-ups between them, which
// on a small machine cost as much CPU as the rest of the tunnel.
//
// On the wire: the open request sets "handoff"; an agent that can take the
// descriptors answers OK with "handoff" set, and the proxy sends one byte
// carrying both descriptors (SCM_RIGHTS, stdin first). From then on the
// control connection carries one more reply, the verdict, when the stream
// has ended; the proxy closing the connection first aborts the stream. An
// agent that predates hand-off ignores the field and serves the framed
// stream, which the proxy then uses instead.
//
// Detach: an agent that also answers with "detach" set accepts one more
// byte from the proxy, detachByte, once ssh has exited and hung up on it.
// The agent then answers at once, with the verdict if it had already sent
// one (a cut is told before ssh's pipes close, so before ssh can exit) and
// a clean one otherwise, and finishes the stream by itself. Without it the
// proxy waited for the server to close its side, a round trip after ssh
// had exited, all the while holding the stderr that ssh's caller reads to
// its end.

// handoffTimeout bounds the wait for the descriptors after the agent said
// it takes them.
const handoffTimeout = 10 * time.Second

// detachByte is what a proxy sends on the control connection to detach.
const detachByte = 'D'

// detachGrace bounds how long a detached stream may take to end by itself
// (normally a round trip: the server closes its side after ssh's last
// bytes) before the agent cuts it, as a proxy waiting for it did before.
const detachGrace = 10 * time.Second

// Handoff is a stream that the agent serves on the proxy's stdin and
// stdout. Done is closed when the agent has reported how it ended.
type Handoff struct {
	c         *net.UnixConn
	canDetach bool // the agent accepts detachByte
	done      chan struct{}
	err       error
}

// Done is closed when the stream has ended; Err then tells how.
func (h *Handoff) Done() <-chan struct{} { return h.done }

// Err is nil for a stream that ended cleanly and a *StreamError for one
// that was cut (or whose agent died). Valid after Done is closed.
func (h *Handoff) Err() error { return h.err }

// Abort ends the stream at once (the agent closes it and both
// descriptors) and waits for the verdict reader to finish.
func (h *Handoff) Abort() {
	_ = h.c.Close()
	<-h.done
}

// Detach is for a proxy whose ssh has exited: the agent finishes the
// stream without it and answers at once, so Done follows within a local
// round trip instead of when the server has closed its side. Err then
// still holds a cut the agent told before ssh could exit. It reports
// false, and sends nothing, when the agent predates it: Done then comes
// with the stream's end, as before.
func (h *Handoff) Detach() bool {
	if !h.canDetach {
		return false
	}
	// A failed write means the agent is gone, which the verdict reader
	// sees too.
	_, _ = h.c.Write([]byte{detachByte})
	return true
}

// errAgentGone is a stream's end when the agent went away without a word
// (killed): what happened, and where to look.
const errAgentGone = "the sandmux agent exited while the stream was open (killed? see agent.log in the agent's directory); the next proxy or forward starts a new one"

// errAgentGoneHandoff is errAgentGone for an agent that went away after
// it said it would take the proxy's descriptors, before it took them.
const errAgentGoneHandoff = "the sandmux agent exited while taking over the stream (killed? see agent.log in the agent's directory); the next proxy or forward starts a new one"

// agentGoneOr is err, a failure to hand descriptors to the agent, or
// errAgentGoneHandoff when the agent's end of the connection was closed:
// "write: broken pipe" on its socket's path said neither what happened
// nor what to do.
func agentGoneOr(err error) error {
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		return &StreamError{Reason: errAgentGoneHandoff}
	}
	return err
}

func (h *Handoff) readVerdict() {
	defer close(h.done)
	var rep reply
	if err := readMessage(h.c, &rep); err != nil {
		if errors.Is(err, net.ErrClosed) {
			h.err = err
			return
		}
		h.err = &StreamError{Reason: errAgentGone}
		return
	}
	if !rep.OK {
		h.err = &StreamError{Reason: rep.Error}
	}
	// The connection stays open until Close (or the proxy's exit): the
	// agent keeps ssh's pipes open after a cut until it closes, so that
	// the proxy prints the verdict before ssh, which exits as soon as its
	// pipes close, has exited.
}

// Close releases the connection to the agent once the verdict has been
// told (printed): a cut stream's pipes close then, and ssh exits.
func (h *Handoff) Close() error { return h.c.Close() }

// OpenStdio is Open for a process whose in and out are pipes or sockets:
// it hands both to the agent, closes them here and returns a Handoff. An
// agent too old for hand-off serves a framed stream instead, returned as
// conn (as Open returns it) with a nil Handoff; in and out are then left
// open for the caller to splice.
func OpenStdio(ctx context.Context, dir string, start func() error, req OpenRequest, in, out *os.File) (net.Conn, *Handoff, error) {
	req.Handoff = true
	c, rep, err := open(ctx, dir, start, req)
	if err != nil {
		return nil, nil, err
	}
	if !rep.Handoff {
		// An agent too old to take descriptors is too old to take
		// frames from the proxy.
		return newFramedReader(c, false), nil, nil
	}
	if err := sendFiles(c, in, out); err != nil {
		_ = c.Close()
		return nil, nil, agentGoneOr(err)
	}
	// The agent holds its own copies now; ours must go, or ssh would not
	// see EOF when the agent closes the stream's end.
	_ = in.Close()
	_ = out.Close()
	h := &Handoff{c: c, canDetach: rep.Detach, done: make(chan struct{})}
	go h.readVerdict()
	return nil, h, nil
}

// Handoffable reports whether f is a pipe or a socket: such a descriptor
// can be polled (by the agent, or by the proxy in non-blocking mode)
// without touching a terminal the shell shares. A terminal or a regular
// file is not handed off.
func Handoffable(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&(os.ModeNamedPipe|os.ModeSocket) != 0 && pollableFIFO(fi)
}

// serveHandoff takes the proxy's descriptors and splices stream to them
// until either ends, then sends the verdict. It owns c and stream; stop
// is Config.StopCommand.
func serveHandoff(c *net.UnixConn, stream net.Conn, verdict func(error) error, stop string) {
	in, out, restore, ok := takeStdio(c, stream, stop)
	if !ok {
		return
	}

	v := &verdictOnce{c: c}
	var ended, cut atomic.Bool // the stream's data came to its end; it was cut
	// The proxy going away (killed, or interrupted by the user) ends the
	// stream, as it did when the bytes crossed the proxy. A proxy that
	// detaches instead (its ssh has exited) gets its answer now and leaves
	// the stream to end by itself.
	spliced := make(chan struct{})
	proxyDone := make(chan struct{}) // it closed the connection, or detached
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		var b [1]byte
		n, _ := c.Read(b[:])
		close(proxyDone)
		if n == 1 && b[0] == detachByte {
			v.send(nil)
			t := time.NewTimer(detachGrace)
			defer t.Stop()
			select {
			case <-spliced:
				return
			case <-t.C:
			}
		}
		select {
		case <-spliced:
		default:
			// A cut: reset, so that the far end does not take what it
			// got for the whole, and so the proxy's side unless all the
			// stream's data reached it, its end included (a forwarded
			// connection, whose client may not have read it all yet).
			mux.Abort(stream)
			if ended.Load() {
				_ = in.Close()
				_ = out.Close()
			} else {
				client.AbortStdio(in, out)
			}
		}
	}()
	// A stream cut by its session is told to the proxy before the splice
	// closes ssh's pipes: ssh exits as soon as they close and hangs up on
	// the proxy, which must have its line by then. Sent is not enough: a
	// proxy not yet scheduled printed it after ssh had exited (past the
	// shell's prompt), so the pipes wait until it has told the verdict,
	// when it closes the connection (Handoff.Close, or its exit), for
	// verdictTaken at most. Both directions of the splice meet a cut,
	// in either order, and either closes the pipes once its call returns:
	// the one that meets it second waits in cutOnce for the first (the
	// reader returning at once closed them after an upload's writer had
	// told the cut).
	var cutOnce sync.Once
	early := mux.Watch(stream, func(err error) {
		if errors.Is(err, io.EOF) {
			// Read by the splice after its last write to out: every
			// byte of the stream is out there.
			ended.Store(true)
		}
		if !cutBy(err) {
			return
		}
		cut.Store(true)
		cutOnce.Do(func() {
			if !v.send(verdict(err)) {
				return
			}
			t := time.NewTimer(verdictTaken)
			defer t.Stop()
			select {
			case <-proxyDone:
			case <-t.C:
			}
		})
	})
	err := client.Pipe(early, in, out) // closes in and out
	if !cut.Load() && localGone(err) {
		// The proxy or forward says nothing, as when it splices itself.
		err = nil
	}
	err = verdict(err)
	restore()
	close(spliced)
	v.send(err)
	_ = c.Close()
	watch.Wait()
}

// localGone reports whether err, a splice's end when the stream was not
// cut, is the local side's: ssh is gone (killed, or it exited before its
// hang-up reached the proxy), so its stdin has no reader (EPIPE), or the
// socket an --fdpass ssh held was closed with bytes unread (ECONNRESET);
// or a forwarded connection's client reset it. Their end, not the
// tunnel's.
func localGone(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// takeStdio receives the proxy's descriptors (recvStdio) within
// handoffTimeout. On a failure it tells the proxy, closes c and stream,
// and reports false.
func takeStdio(c *net.UnixConn, stream net.Conn, stop string) (in io.ReadCloser, out io.WriteCloser, restore func(), ok bool) {
	_ = c.SetReadDeadline(time.Now().Add(handoffTimeout))
	in, out, restore, err := recvStdio(c)
	if err != nil {
		_ = stream.Close()
		_ = writeMessage(c, reply{Version: protoVersion, Error: handoffFailed(err, stop)})
		_ = c.Close()
		return nil, nil, nil, false
	}
	_ = c.SetReadDeadline(time.Time{})
	return in, out, restore, true
}

// verdictOnce sends a proxy its one verdict: the first of a cut told
// early, the stream's end, and the answer to a detach.
type verdictOnce struct {
	c    *net.UnixConn
	mu   sync.Mutex
	sent bool
}

// send reports whether this call sent the verdict.
func (v *verdictOnce) send(err error) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.sent {
		return false
	}
	v.sent = true
	_ = writeMessage(v.c, verdictReply(err))
	return true
}

// verdictTaken bounds how long ssh's pipes stay open after a cut's
// verdict went to a proxy that has not read it yet.
const verdictTaken = 2 * time.Second

func verdictReply(err error) reply {
	rep := reply{Version: protoVersion, OK: err == nil}
	if err != nil {
		rep.Error = err.Error()
	}
	return rep
}

// cutBy reports whether err cut the stream: not its end (EOF), and not a
// deadline or close the splice itself set when the other direction failed
// first.
func cutBy(err error) bool {
	var nr *mux.NotResumedError
	var se *mux.StreamError
	if errors.As(err, &nr) || errors.As(err, &se) || errors.Is(err, mux.ErrSessionEnded) || errors.Is(err, mux.ErrSessionDead) {
		return true
	}
	var ne net.Error
	return !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !(errors.As(err, &ne) && ne.Timeout())
}
