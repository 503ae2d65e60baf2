package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"github.com/sandmux/sandmux/internal/neterrno"
)

// SOCKS5 (RFC 1928) with user name and password authentication
// (RFC 1929): what curl and git speak to a socks5:// or socks5h://
// proxy, such as `ssh -D`'s.
const (
	socksVersion     = 5
	socksNoAuth      = 0x00
	socksUserPass    = 0x02
	socksNoMethod    = 0xff
	socksConnect     = 0x01
	socksIPv4        = 0x01
	socksDomain      = 0x03
	socksIPv6        = 0x04
	socksDefaultPort = "1080"
)

// isSOCKS reports whether scheme names a SOCKS5 proxy: socks5:// has the
// client resolve the server's name, socks5h:// leaves it to the proxy.
func isSOCKS(scheme string) bool { return scheme == "socks5" || scheme == "socks5h" }

// socksReplies are RFC 1928 §6's reply codes in words.
var socksReplies = map[byte]string{
	0x01: "general SOCKS server failure",
	0x02: "connection not allowed by ruleset",
	0x03: "network unreachable",
	0x04: "host unreachable",
	0x05: "connection refused",
	0x06: "TTL expired",
	0x07: "command not supported",
	0x08: "address type not supported",
}

// socksReplyText is code in words.
func socksReplyText(code byte) string {
	if s, ok := socksReplies[code]; ok {
		return s
	}
	return fmt.Sprintf("unknown reply code %d", code)
}

// dialSOCKS connects to addr through the SOCKS5 proxy p. With socks5://
// the server's name is resolved here and the proxy is asked for the IP
// address; with socks5h:// the proxy is given the name. A failure is a
// *ProxyError.
func dialSOCKS(ctx context.Context, d *net.Dialer, p *url.URL, addr string) (net.Conn, error) {
	fail := func(err error) error { return &ProxyError{Proxy: RedactProxy(p), Err: err} }
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fail(err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fail(fmt.Errorf("bad port in %s", addr))
	}
	if p.Scheme == "socks5" && net.ParseIP(host) == nil {
		r := d.Resolver
		if r == nil {
			r = net.DefaultResolver
		}
		ips, err := r.LookupIPAddr(ctx, host)
		if err != nil {
			return nil, fail(err)
		}
		host = ips[0].IP.String()
	}
	paddr := p.Host
	if p.Port() == "" {
		paddr = net.JoinHostPort(p.Hostname(), socksDefaultPort)
	}
	c, err := d.DialContext(ctx, "tcp", paddr)
	if err != nil {
		return nil, fail(err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	if reply, err := socksHandshake(c, p.User, host, uint16(port)); err != nil || reply != 0 {
		_ = c.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		if err != nil {
			return nil, fail(err)
		}
		return nil, &ProxyError{Proxy: RedactProxy(p), Reply: reply}
	}
	if !stop() {
		_ = c.Close()
		return nil, fail(ctx.Err())
	}
	return c, nil
}

// socksHandshake authenticates on c and asks the proxy to CONNECT to
// host:port. It returns the proxy's refusal code, 0 when it accepted. It
// reads exactly the proxy's answers, so that what follows on c is the
// server's.
func socksHandshake(c net.Conn, user *url.Userinfo, host string, port uint16) (byte, error) {
	methods := []byte{socksNoAuth}
	if user != nil {
		methods = append(methods, socksUserPass)
	}
	if _, err := c.Write(append([]byte{socksVersion, byte(len(methods))}, methods...)); err != nil {
		return 0, err
	}
	var b [2]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, err
	}
	if b[0] != socksVersion {
		return 0, fmt.Errorf("%w: it answered %q", ErrNotSOCKS5, b[:])
	}
	switch b[1] {
	case socksNoAuth:
	case socksUserPass:
		if user == nil {
			return 0, fmt.Errorf("%w: it chose an authentication method not offered", ErrNotSOCKS5)
		}
		if err := socksUserPassAuth(c, user); err != nil {
			return 0, err
		}
	case socksNoMethod:
		if user == nil {
			return 0, ErrSOCKSAuthNeeded
		}
		return 0, ErrSOCKSAuthMethod
	default:
		return 0, fmt.Errorf("%w: it chose an authentication method not offered", ErrNotSOCKS5)
	}

	req := []byte{socksVersion, socksConnect, 0}
	if ip := net.ParseIP(host); ip != nil {
		if ip4 := ip.To4(); ip4 != nil {
			req = append(append(req, socksIPv4), ip4...)
		} else {
			req = append(append(req, socksIPv6), ip.To16()...)
		}
	} else {
		// checkProxy cannot see the server's name; a URL's host is far
		// shorter in practice, but a longer one must not wrap.
		if len(host) > 255 {
			return 0, fmt.Errorf("host name %.20s… is longer than SOCKS5's 255 bytes", host)
		}
		req = append(append(req, socksDomain, byte(len(host))), host...)
	}
	req = binary.BigEndian.AppendUint16(req, port)
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	var head [4]byte // VER REP RSV ATYP
	if _, err := io.ReadFull(c, head[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || neterrno.Is(err, syscall.ECONNRESET) {
			// `ssh -D` says no so, where a SOCKS server sends a code.
			return 0, ErrSOCKSClosed
		}
		return 0, err
	}
	if head[0] != socksVersion {
		return 0, fmt.Errorf("%w: it answered %q to CONNECT", ErrNotSOCKS5, head[:])
	}
	if head[1] != 0 {
		// The bound address that follows is meaningless on a refusal,
		// and the connection is closed: not read.
		return head[1], nil
	}
	var n int
	switch head[3] {
	case socksIPv4:
		n = net.IPv4len
	case socksIPv6:
		n = net.IPv6len
	case socksDomain:
		var l [1]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return 0, err
		}
		n = int(l[0])
	default:
		return 0, fmt.Errorf("%w: address type %d in its answer to CONNECT", ErrNotSOCKS5, head[3])
	}
	// BND.ADDR and BND.PORT: where the proxy connected from, unused.
	if _, err := io.ReadFull(c, make([]byte, n+2)); err != nil {
		return 0, err
	}
	return 0, nil
}

// socksUserPassAuth is RFC 1929's subnegotiation: the proxy's URL's user
// name and password, whose lengths checkProxy has checked.
func socksUserPassAuth(c net.Conn, user *url.Userinfo) error {
	name := user.Username()
	pw, _ := user.Password()
	msg := append([]byte{1, byte(len(name))}, name...)
	msg = append(append(msg, byte(len(pw))), pw...)
	if _, err := c.Write(msg); err != nil {
		return err
	}
	var b [2]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return err
	}
	// Version 1 by the RFC; some servers echo 5. Either way only the
	// status says yes.
	if b[1] != 0 {
		return ErrSOCKSAuthFailed
	}
	return nil
}

// socksTemporary reports whether asking the SOCKS5 proxy again may help:
// not when it refused by rule or by what it can do, nor when the
// credentials or the name are wrong; a server it could not reach may be
// back in a moment.
func socksTemporary(reply byte, err error) bool {
	switch reply {
	case 0x02, 0x07, 0x08:
		return false
	}
	var dns *net.DNSError
	switch {
	case errors.Is(err, ErrNotSOCKS5), errors.Is(err, ErrSOCKSAuthFailed), errors.Is(err, ErrSOCKSAuthNeeded), errors.Is(err, ErrSOCKSAuthMethod):
		return false
	case errors.As(err, &dns):
		return !dns.IsNotFound
	}
	return true
}

// socksHint says what to do about a SOCKS5 proxy's failure; scheme is
// the proxy's, socks5 or socks5h.
func socksHint(reply byte, err error, scheme string) string {
	switch reply {
	case 0:
	case 0x02:
		return "the proxy does not allow this destination; ask its administrator, or exempt the server's host with NO_PROXY"
	case 0x03, 0x04, 0x06:
		if scheme == "socks5" {
			return "the proxy cannot reach the server: check the URL's host, or use socks5h:// so that the proxy resolves the name itself"
		}
		return "the proxy cannot reach the server: check the URL's host and port"
	case 0x05:
		return "nothing listens there: check the port in the URL and that `sandmux server` runs (it listens on 8081)"
	case 0x07:
		return "the proxy does not offer CONNECT; ask its administrator"
	case 0x08:
		if scheme == "socks5h" {
			return "the proxy does not take host names: use socks5:// so that sandmux resolves the name"
		}
		return "the proxy does not take this kind of address: use socks5h:// so that it is given the host name"
	default:
		return "the proxy could not reach the server: check the URL, and the proxy's log"
	}
	var dns *net.DNSError
	switch {
	case errors.Is(err, ErrSOCKSClosed):
		return "as `ssh -D` does when it cannot reach the server: check the URL's host and port"
	case errors.Is(err, ErrSOCKSAuthFailed):
		return "check the user and password in the proxy URL: " + scheme + "://user:password@proxy:port"
	case errors.Is(err, ErrSOCKSAuthNeeded):
		return "give the proxy's user and password in the proxy URL: " + scheme + "://user:password@proxy:port"
	case errors.Is(err, ErrSOCKSAuthMethod):
		return "sandmux speaks no other SOCKS authentication (such as GSSAPI); ask the proxy's administrator"
	case errors.Is(err, ErrNotSOCKS5):
		return "check the proxy's port; an HTTP proxy is given as http://"
	case errors.As(err, &dns):
		return "check the host name, or use socks5h:// so that the proxy resolves it"
	}
	return "check ALL_PROXY, HTTPS_PROXY, HTTP_PROXY and NO_PROXY, and that the proxy runs"
}
