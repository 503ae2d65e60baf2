package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"syscall"
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
// both stdin and stdout), and answers once more, OK when it holds it or
// with the reason it could not take it. It then serves the stream to its
// end without the proxy: nobody is told a verdict, and the control
// connection closing is not an abort. An agent that predates it answers
// without "disown", and the proxy refuses to go on (it cannot stay: ssh
// waits for it to exit).

// errDisownUnknown is a proxy's line when its agent predates --fdpass.
const errDisownUnknown = "the running sandmux agent predates --fdpass (ssh's ProxyUseFdpass): run `sandmux agent --stop` (which ends its open streams), or drop --fdpass and ProxyUseFdpass"

// OpenFdpass opens a stream through the agent for a proxy that ssh runs
// with ProxyUseFdpass, whose ssh waits on sshSock (the proxy's stdout, a
// Unix socket: FdpassSocket) for the connection's descriptor. It returns
// once the agent holds one end of a new socket pair and ssh the other;
// the caller then exits, and ssh uses the connection. On an error ssh
// got nothing and says "proxy dialer did not pass back a connection"
// after the caller's line.
func OpenFdpass(ctx context.Context, dir string, start func() error, req OpenRequest, sshSock *os.File) error {
	agentEnd, sshEnd, err := socketPair()
	if err != nil {
		return fmt.Errorf("make a socket pair for ssh: %w", err)
	}
	defer agentEnd.Close()
	defer sshEnd.Close()
	if err := openDisowned(ctx, dir, start, req, agentEnd); err != nil {
		return err
	}
	// Closing ours on return leaves the agent the only holder of its end,
	// and ssh of the other: either closing it is the stream's end.
	if err := passFD(sshSock, sshEnd); err != nil {
		return fmt.Errorf("pass the connection to ssh: %w", err)
	}
	return nil
}

// openDisowned asks the agent for a stream that it serves on f alone, and
// returns once it holds f.
func openDisowned(ctx context.Context, dir string, start func() error, req OpenRequest, f *os.File) error {
	req.Handoff, req.Disown = true, true
	c, rep, err := open(ctx, dir, start, req)
	if err != nil {
		return err
	}
	defer c.Close()
	if !rep.Handoff || !rep.Disown {
		return errors.New(errDisownUnknown)
	}
	if err := sendFiles(c, f, f); err != nil {
		return err
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
// as its stdin and stdout), tells it so, and splices stream to it until
// either ends. It owns c and stream. A cut is logged, as there is no
// proxy left to tell it.
func serveDisowned(c *net.UnixConn, stream net.Conn, verdict func(error) error, log *slog.Logger) {
	in, out, restore, ok := takeStdio(c, stream)
	if !ok {
		return
	}
	err := writeMessage(c, reply{Version: protoVersion, OK: true})
	_ = c.Close()
	if err != nil {
		// The proxy went away before it could pass its end to ssh:
		// nobody will use this one.
		mux.Abort(stream)
		_ = in.Close()
		_ = out.Close()
		restore()
		return
	}
	err = client.Pipe(stream, in, out) // closes in and out
	restore()
	if errors.Is(err, syscall.EPIPE) {
		err = nil // ssh is gone: its end, not the tunnel's
	}
	if err := verdict(err); err != nil {
		log.Info("stream of an --fdpass proxy cut; its ssh was not told why", "err", err)
	}
}
