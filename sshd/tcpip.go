package sshd

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/sandmux/sandmux/internal/logflood"
	"github.com/sandmux/sandmux/mux"
)

// copyBufSize is the buffer of every stream copy: one SSH channel packet.
const copyBufSize = 32 << 10

// directTCPIPMsg is a direct-tcpip channel's open payload (RFC 4254 7.2).
type directTCPIPMsg struct {
	Host     string
	Port     uint32
	OrigHost string
	OrigPort uint32
}

// directTCPIP serves ssh -L and ssh -W: a channel spliced to a TCP
// connection the server makes, if Config.AllowTarget allows the target.
func (c *conn) directTCPIP(nch ssh.NewChannel) {
	var m directTCPIPMsg
	if ssh.Unmarshal(nch.ExtraData(), &m) != nil || m.Port == 0 || m.Port > 65535 || m.Host == "" {
		_ = nch.Reject(ssh.ConnectionFailed, "malformed direct-tcpip request")
		return
	}
	target := net.JoinHostPort(m.Host, strconv.FormatUint(uint64(m.Port), 10))
	log := c.log.With("target", target)
	if c.noPortForwarding() {
		log.Info("refused direct-tcpip: the key has no-port-forwarding", logflood.Limit)
		_ = nch.Reject(ssh.Prohibited, "port forwarding is not permitted for this key")
		return
	}
	dial, ok := "", false // no AllowTarget refuses every target
	if allow := c.srv.cfg.AllowTarget; allow != nil {
		dial, ok = allow(target)
	}
	if !ok {
		log.Info("refused direct-tcpip: not allowed", logflood.Limit)
		// Said as what to do, as a refused stream's line says it (mux).
		_ = nch.Reject(ssh.Prohibited, target+" is not allowed ("+mux.AllowHint(target)+")")
		return
	}
	d := net.Dialer{Timeout: c.srv.cfg.DialTimeout}
	tc, err := d.DialContext(c.srv.ctx, "tcp", dial)
	if err != nil {
		log.Info("direct-tcpip: cannot connect", logflood.Limit, "err", err)
		why := err
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			why = oe.Err
		}
		_ = nch.Reject(ssh.ConnectionFailed, fmt.Sprintf("cannot connect to %s inside the sandbox: %v", target, why))
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		_ = tc.Close()
		return
	}
	log.Debug("direct-tcpip opened")
	splice(ch, reqs, tc)
}

// splice copies both ways, passing each direction's EOF on, until both
// have ended or the channel is closed.
func splice(ch ssh.Channel, reqs <-chan *ssh.Request, tc net.Conn) {
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for req := range reqs {
			_ = req.Reply(false, nil)
		}
		// The channel is gone: unblock the copy reading tc.
		_ = tc.Close()
	}()
	var copies sync.WaitGroup
	copies.Go(func() {
		_, _ = io.CopyBuffer(tc, ch, make([]byte, copyBufSize))
		if cw, ok := tc.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	})
	copies.Go(func() {
		_, _ = io.CopyBuffer(ch, tc, make([]byte, copyBufSize))
		_ = ch.CloseWrite()
	})
	copies.Wait()
	_ = ch.Close()
	_ = tc.Close()
	<-closed
}
