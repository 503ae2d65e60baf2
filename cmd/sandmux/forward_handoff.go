package main

import (
	"context"
	"errors"
	"net"
	"os"
	"time"

	"github.com/sandmux/sandmux/agent"
)

// A forwarded TCP connection through the agent is handed to it (the
// descriptor, over its socket, as a proxy hands ssh's stdin and stdout),
// so the agent carries its bytes itself. Through this process they cost
// a third process on the path: a framed copy each way over the agent's
// socket, which took more CPU than the agent's own work (1 GiB uploaded
// on loopback: this process 0.7–0.9 CPU-s and the agent 0.8–1.0, against
// 0.7 for a --no-agent forward alone). This process then only waits for
// the agent's word on how the connection ended.

// handoffOpener hands a connection to whoever opens the stream for it.
type handoffOpener interface {
	// handoff asks for a stream to target carried on f, which it closes
	// once handed over. An agent too old to take it returns a framed
	// stream instead, and leaves f open.
	handoff(ctx context.Context, target string, f *os.File) (net.Conn, *agent.Handoff, error)
}

func (o *agentOpener) handoff(ctx context.Context, target string, f *os.File) (net.Conn, *agent.Handoff, error) {
	req := o.req
	req.Target = target
	ctx, cancel := context.WithTimeout(ctx, o.timeout+15*time.Second)
	defer cancel()
	return agent.OpenStdio(ctx, o.dir, o.start, req, f, f)
}

// handOff carries c through the agent's hand-off when f's opener takes
// connections and c is TCP; it reports false, having done nothing, when
// not, for handle to splice c itself.
func (f *forwarder) handOff(ctx context.Context, c net.Conn, s forwardSpec) bool {
	ho, ok := f.opener.(handoffOpener)
	tc, isTCP := c.(*net.TCPConn)
	if !ok || !isTCP {
		return false
	}
	file, err := tc.File() // a descriptor of its own: the agent's copy
	if err != nil {
		return false
	}
	stream, h, err := ho.handoff(ctx, s.Target, file)
	if err != nil {
		_ = file.Close()
		f.refuse(ctx, c, s, err)
		return true
	}
	if h == nil {
		// An agent too old for hand-off: its framed stream is spliced
		// here, as from any opener.
		_ = file.Close()
		f.splice(ctx, c, stream, s)
		return true
	}
	// The agent holds the connection now. Closing this process's
	// descriptor sends nothing while the agent's stays open.
	_ = tc.Close()
	select {
	case <-h.Done():
	case <-ctx.Done():
		// Stopped: the agent resets what is still under way (as handle
		// does), sparing a connection whose data all reached its client.
		h.Abort()
	}
	var se *agent.StreamError
	if errors.As(h.Err(), &se) && ctx.Err() == nil {
		f.printf("forward %s -> %s: %v", s.Listen, s.Target, se)
	}
	// Told: the connection to the agent goes. Kept, as a proxy keeps its
	// own until it exits, it held a descriptor for every connection the
	// forward had carried.
	_ = h.Close()
	return true
}
