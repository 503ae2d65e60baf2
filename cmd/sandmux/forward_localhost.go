package main

import (
	"net"
	"strconv"
)

// A BIND of localhost listens on both loopback addresses, 127.0.0.1 and
// ::1, as ssh -L does: Go would take the first address the name resolves
// to, so a client that tries ::1 first (curl, browsers) found nothing
// listening there. The IPv4 one is required; the IPv6 one is added when
// this machine has it, and its failure is a line, not an error, as ssh
// warns and goes on.

// localhostPort is hostport's port when its BIND is localhost.
func localhostPort(hostport string) (string, bool) {
	host, port, err := net.SplitHostPort(hostport)
	return port, err == nil && host == "localhost"
}

// loopbackFirst is hostport with a BIND of localhost as 127.0.0.1.
func loopbackFirst(hostport string) string {
	if port, ok := localhostPort(hostport); ok {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return hostport
}

// alsoIPv6 listens on [::1] at ln's port when hostport's BIND is
// localhost, and says so in a line when it cannot (raw is the -L as
// given).
func (f *forwarder) alsoIPv6(raw, hostport string, ln net.Listener) (net.Listener, bool) {
	if _, ok := localhostPort(hostport); !ok {
		return nil, false
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln6, err := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(port)))
	if err != nil {
		f.printf("-L %s: listening on 127.0.0.1 only, not on [::1]: %v", raw, err)
		return nil, false
	}
	return ln6, true
}
