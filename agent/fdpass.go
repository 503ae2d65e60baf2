package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/mux"
)

// ssh's ProxyUseFdpass: ssh gives its ProxyCommand one end of a Unix
// socket pair as both stdin and stdout, waits on it for the descriptor of
// the connection (SCM_RIGHTS), and uses that only once the ProxyCommand
// has exited (sshconnect.c, ssh_proxy_fdpass_connect). So the proxy makes
// a socket pair of its own, hands one end to the agent as a proxy hands
// its stdin and stdout (handoff.go), passes the other to ssh, and exits:
// no sandmux process stays beside the ssh.
//
// On the wire: the open request sets "disown" with "handoff"; an agent
// that knows it answers with "disown" set, takes the one end (sent as
// both stdin and stdout) and then, in a message of its own, the proxy's
// stderr (ssh's), and answers once more, OK when it holds them or with
// the reason it could not take them. It then serves the stream to its
// end without the proxy: the control connection closing is not an
// abort, and a cut is told on ssh's stderr, as the proxy would have told
// it, before the connection closes. An agent that predates it answers
// without "disown", and the proxy refuses to go on (it cannot stay: ssh
// waits for it to exit).

// errDisownUnknown is a proxy's line when its agent predates --fdpass;
// %s is the command that stops it.
const errDisownUnknown = "the running sandmux agent predates --fdpass (ssh's ProxyUseFdpass): run `%s` (which ends its open streams), or drop --fdpass and ProxyUseFdpass"

// OpenFdpass opens a stream through the agent for a proxy that ssh runs
// with ProxyUseFdpass, whose ssh waits on sshSock (the proxy's stdout, a
// Unix socket: FdpassSocket) for the connection's descriptor; stderr is
// ssh's, where the agent tells a cut. It returns once the agent holds
// one end of a new socket pair and ssh the other; the caller then exits,
// and ssh uses the connection. On an error ssh got nothing and says
// "proxy dialer did not pass back a connection" after the caller's line.
func OpenFdpass(ctx context.Context, dir string, start func() error, req OpenRequest, sshSock, stderr *os.File) error {
	if _, err := stderr.Stat(); err != nil {
		// Closed (2>&-): a cut is told nowhere, as the proxy would.
		null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer null.Close()
		stderr = null
	}
	agentEnd, sshEnd, err := socketPair()
	if err != nil {
		return fmt.Errorf("make a socket pair for ssh: %w", err)
	}
	defer agentEnd.Close()
	defer sshEnd.Close()
	if err := openDisowned(ctx, dir, start, req, agentEnd, stderr); err != nil {
		return err
	}
	// Closing ours on return leaves the agent the only holder of its end,
	// and ssh of the other: either closing it is the stream's end.
	if err := passFD(sshSock, sshEnd); err != nil {
		return fmt.Errorf("pass the connection to ssh: %w", err)
	}
	return nil
}

// openDisowned asks the agent for a stream that it serves on f alone,
// telling a cut on stderr, and returns once it holds both.
func openDisowned(ctx context.Context, dir string, start func() error, req OpenRequest, f, stderr *os.File) error {
	req.Handoff, req.Disown = true, true
	c, rep, err := open(ctx, dir, start, req)
	if err != nil {
		return err
	}
	defer c.Close()
	if !rep.Handoff || !rep.Disown {
		return fmt.Errorf(errDisownUnknown, stopCommand(req.StopCommand))
	}
	if err := sendFiles(c, f, f); err != nil {
		return agentGoneOr(err)
	}
	if err := sendFiles(c, stderr); err != nil {
		return agentGoneOr(err)
	}
	// The agent answers at once: it only takes the descriptors.
	_ = c.SetReadDeadline(time.Now().Add(handoffTimeout))
	var taken reply
	if err := readMessage(c, &taken); err != nil {
		return fmt.Errorf("the sandmux agent did not say whether it took the connection: %w (see %s in its directory)", err, LogName)
	}
	if !taken.OK {
		return errors.New(taken.Error)
	}
	return nil
}

// serveDisowned takes the descriptor of an --fdpass proxy's socket (sent
// as its stdin and stdout) and its stderr, tells it so, and splices
// stream to the socket until either ends. It owns c and stream. A cut is
// told on ssh's stderr before ssh's connection closes (ssh exits then),
// and logged.
func serveDisowned(c *net.UnixConn, stream net.Conn, verdict func(error) error, log *slog.Logger, stop string) {
	in, out, restore, ok := takeStdio(c, stream, stop)
	if !ok {
		return
	}
	f, err := recvFile(c, "stderr")
	if err == nil {
		err = writeMessage(c, reply{Version: protoVersion, OK: true})
	} else {
		_ = writeMessage(c, reply{Version: protoVersion, Error: handoffFailed(err, stop)})
	}
	_ = c.Close()
	if err != nil {
		// Or the proxy went away before it could pass its end to ssh:
		// nobody will use this one.
		if f != nil {
			_ = f.Close()
		}
		mux.Abort(stream)
		_ = in.Close()
		_ = out.Close()
		restore()
		return
	}
	stderr := &sshStderr{f: f}
	defer stderr.close()
	// Both directions of the splice may meet the cut; the second waits
	// in the Once until the line is out, before either closes ssh's
	// connection.
	var told sync.Once
	var cut atomic.Bool
	early := mux.Watch(stream, func(err error) {
		if cutBy(err) {
			cut.Store(true)
			told.Do(func() { stderr.tell(verdict(err)) })
		}
	})
	// ssh closes its connection as it exits: from then on the agent
	// must not hold ssh's stderr, a pipe that ssh's caller may read to
	// its end ($(ssh ... 2>&1)), while the stream's far end finishes.
	err = client.Pipe(early, closeAtEnd{in, stderr.close}, out) // closes in and out
	restore()
	if !cut.Load() && localGone(err) {
		// ssh is gone: it closed its connection with the stream's bytes
		// unread (killed), which the agent read as a reset and logged as
		// a cut.
		err = nil
	}
	if err := verdict(err); err != nil {
		log.Info("stream of an --fdpass proxy cut", "err", err)
	}
}

// sshStderr is the stderr of an --fdpass proxy's ssh, closed at most
// once, after which a tell is dropped.
type sshStderr struct {
	mu sync.Mutex
	f  *os.File
}

// tell writes err as the proxy would have printed it.
func (s *sshStderr) tell(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil && err != nil {
		_, _ = s.f.WriteString("sandmux: " + err.Error() + "\n")
	}
}

func (s *sshStderr) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		_ = s.f.Close()
		s.f = nil
	}
}

// closeAtEnd calls done when a Read of r fails (its end, or an error),
// and when it is closed.
type closeAtEnd struct {
	r    io.ReadCloser
	done func()
}

func (c closeAtEnd) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil {
		c.done()
	}
	return n, err
}

func (c closeAtEnd) Close() error {
	c.done()
	return c.r.Close()
}
