package main

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// listenFault says what is wrong with addr as a --listen or
// --metrics-listen value, and what to give instead, before anything
// listens or looks a name up; "" when nothing is. Go's own words for
// these ("address 8081: missing port in address", "lookup tcp/0x50:
// unknown port") named neither; example is a working HOST:PORT, which
// ex turns into the flag as typed.
func listenFault(addr, example string, ex func(string) string) string {
	exHost, exPort, _ := net.SplitHostPort(example)
	if strings.Contains(addr, "://") {
		return "give HOST:PORT, not a URL, e.g. " + ex(example)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return splitFault(addr, exHost, exPort, ex)
	}
	if fault := portFault(port, host, exPort, ex); fault != "" {
		return fault
	}
	if host == "*" {
		return "give 0.0.0.0 (or no HOST) for every interface, e.g. " + ex("0.0.0.0:"+port)
	}
	if fault, advice := bindHostFault(host); fault != "" {
		if advice != "" {
			fault += "; " + advice
		}
		return fault + ", e.g. " + ex(net.JoinHostPort(exHost, port))
	}
	return ""
}

// splitFault says why addr is not HOST:PORT, with examples on exHost and
// exPort.
func splitFault(addr, exHost, exPort string, ex func(string) string) string {
	bare := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
	switch {
	case strings.Count(addr, "[") != strings.Count(addr, "]"):
		return "unbalanced brackets; an IPv6 address goes in brackets, e.g. " + ex("[::1]:"+exPort)
	case strings.HasPrefix(addr, "[") && strings.HasSuffix(addr, "]"):
		return "no port; give HOST:PORT, e.g. " + ex(net.JoinHostPort(bare, exPort))
	case strings.Count(addr, ":") > 1 && !strings.Contains(addr, "["):
		return "give HOST:PORT, an IPv6 address in brackets, e.g. " + ex("[::1]:"+exPort)
	case !strings.Contains(addr, ":") && isPort(addr) && exHost == "0.0.0.0":
		return fmt.Sprintf("a port alone; give HOST:PORT, e.g. %s (every interface) or %s (this machine only)", ex("0.0.0.0:"+addr), ex("127.0.0.1:"+addr))
	case !strings.Contains(addr, ":") && isPort(addr):
		return "a port alone; give HOST:PORT, e.g. " + ex(net.JoinHostPort(exHost, addr))
	case !strings.Contains(addr, ":"):
		return "no port; give HOST:PORT, e.g. " + ex(net.JoinHostPort(addr, exPort))
	}
	return "give HOST:PORT, e.g. " + ex(net.JoinHostPort(exHost, exPort))
}

// isPort reports whether s is a port number, 0 to 65535.
func isPort(s string) bool {
	_, err := strconv.ParseUint(s, 10, 16)
	return err == nil
}

// portFault says what is wrong with port, a number from 0 to 65535 in a
// HOST:PORT whose HOST is host; "" if nothing. exPort is a port to show. A service name
// (:http) is told its number, looked up in the services file (no name
// server is asked): targets and -L take numbers only, and so does this.
func portFault(port, host, exPort string, ex func(string) string) string {
	if isPort(port) {
		return ""
	}
	if strings.Trim(port, "0123456789") != "" {
		if num, err := net.LookupPort("tcp", port); err == nil {
			return fmt.Sprintf("the port is a name; give its number, e.g. %s", ex(net.JoinHostPort(host, strconv.Itoa(num))))
		}
	}
	return "the port must be a number from 0 to 65535, e.g. " + ex(net.JoinHostPort(host, exPort))
}

// bindHostFault says what is wrong with host as an address to listen
// on: an IP address, or a name this machine resolves; "" if nothing.
// advice, when not "", is what --listen's line adds; -L's says its own.
// A name of the .invalid domain is refused without asking a name server
// (RFC 6761 §6.4: it never resolves).
func bindHostFault(host string) (fault, advice string) {
	if host == "" {
		return "", ""
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return "", ""
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	switch {
	case strings.ContainsFunc(host, func(r rune) bool { return !isNameChar(r) }),
		name == "", name[0] == '.', strings.Contains(name, ".."):
		return fmt.Sprintf("%q is neither an IP address nor a host name", host), ""
	case name == "invalid" || strings.HasSuffix(name, ".invalid"):
		return fmt.Sprintf("%s does not resolve (no .invalid name does)", host), "give an address of this machine"
	}
	return "", ""
}

// isNameChar reports whether r may appear in a host name: letters,
// digits, '-', '_' and '.'.
func isNameChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
}
