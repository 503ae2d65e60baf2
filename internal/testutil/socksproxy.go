package testutil

import (
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
)

// SOCKSProxy is a SOCKS5 proxy (RFC 1928, with RFC 1929's user and
// password) on loopback that carries every CONNECT to 127.0.0.1 on the
// port asked for, whatever the address (so that a test can name a server
// by a host that resolves nowhere), and records what it was asked: a host
// name as sent (socks5h://), an IP address as text (socks5://). With auth
// ("user:password") set it wants those credentials.
type SOCKSProxy struct {
	srv    *Server
	auth   string
	refuse atomic.Uint32
	askLog
}

// StartSOCKSProxy runs a SOCKSProxy until the test ends.
func StartSOCKSProxy(t testing.TB, auth string) *SOCKSProxy {
	t.Helper()
	p := &SOCKSProxy{auth: auth}
	p.srv = Serve(t, p.serve)
	return p
}

// URL is the proxy's URL with scheme (socks5 or socks5h) and userinfo
// ("user:password") if given.
func (p *SOCKSProxy) URL(scheme, userinfo string) string {
	if userinfo != "" {
		userinfo += "@"
	}
	return scheme + "://" + userinfo + p.srv.Addr
}

// Refuse makes the proxy answer every CONNECT from now on with the reply
// code (RFC 1928 §6); 0 carries them again.
func (p *SOCKSProxy) Refuse(code byte) { p.refuse.Store(uint32(code)) }

// HangUp makes the proxy close every CONNECT from now on without a reply,
// as `ssh -D` does when it cannot reach the destination.
func (p *SOCKSProxy) HangUp() { p.refuse.Store(hangUp) }

// hangUp, in refuse, stands for HangUp.
const hangUp = 0x100

func (p *SOCKSProxy) serve(c net.Conn) {
	defer c.Close()
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 5 {
		return
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return
	}
	want := byte(0x00)
	if p.auth != "" {
		want = 0x02
	}
	offered := false
	for _, m := range methods {
		offered = offered || m == want
	}
	if !offered {
		_, _ = c.Write([]byte{5, 0xff})
		return
	}
	if _, err := c.Write([]byte{5, want}); err != nil {
		return
	}
	if p.auth != "" {
		user, ok := readSOCKSField(c, true)
		pass, ok2 := readSOCKSField(c, false)
		if !ok || !ok2 {
			return
		}
		if user+":"+pass != p.auth {
			_, _ = c.Write([]byte{1, 1})
			return
		}
		if _, err := c.Write([]byte{1, 0}); err != nil {
			return
		}
	}
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil || req[0] != 5 || req[1] != 1 {
		return
	}
	var host string
	switch req[3] {
	case 1, 4:
		ip := make(net.IP, map[byte]int{1: 4, 4: 16}[req[3]])
		if _, err := io.ReadFull(c, ip); err != nil {
			return
		}
		host = ip.String()
	case 3:
		h, ok := readSOCKSField(c, false)
		if !ok {
			return
		}
		host = h
	default:
		return
	}
	var pb [2]byte
	if _, err := io.ReadFull(c, pb[:]); err != nil {
		return
	}
	port := strconv.Itoa(int(binary.BigEndian.Uint16(pb[:])))
	p.record(net.JoinHostPort(host, port))
	reply := func(code byte) error {
		_, err := c.Write([]byte{5, code, 0, 1, 127, 0, 0, 1, 0, 0})
		return err
	}
	switch code := p.refuse.Load(); code {
	case 0:
	case hangUp:
		return
	default:
		_ = reply(byte(code))
		return
	}
	up, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		_ = reply(5)
		return
	}
	defer up.Close()
	if reply(0) != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(up, c)
		_ = up.(*net.TCPConn).CloseWrite()
	}()
	_, _ = io.Copy(c, up)
	_ = c.Close()
	<-done
}

// readSOCKSField reads a length-prefixed field (after a version byte
// if withVersion, as RFC 1929's request starts).
func readSOCKSField(c net.Conn, withVersion bool) (string, bool) {
	n := 1
	if withVersion {
		n = 2
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		return "", false
	}
	s := make([]byte, b[n-1])
	if _, err := io.ReadFull(c, s); err != nil {
		return "", false
	}
	return string(s), true
}
