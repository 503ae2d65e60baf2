package agent

import (
	"context"
	"errors"
	"net"
	"time"
)

// unixAcceptor is the listener accept needs (a *net.UnixListener).
type unixAcceptor interface {
	AcceptUnix() (*net.UnixConn, error)
}

// accept returns the next connection on ln. It fails only once ln is
// closed or ctx ends: any other error (out of descriptors under many
// proxies, a connection aborted while queued) is waited out, doubling
// from 5 ms to 1 s, as net/http does, because ending the agent would cut
// every session it holds.
func (a *Agent) accept(ctx context.Context, ln unixAcceptor) (*net.UnixConn, error) {
	var backoff time.Duration
	for {
		c, err := ln.AcceptUnix()
		if err == nil || errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
			return c, err
		}
		backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
		a.log.Warn("accept on the agent socket failed; retrying", "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}
