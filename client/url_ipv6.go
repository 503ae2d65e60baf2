package client

import (
	"fmt"
	"net/netip"
	"strings"
)

// ipv6Host parses host as ssh passes %h for an IPv6 address: as typed,
// so "::1" for `ssh ::1` and "[::1]" for `ssh [::1]` or `ssh user@[::1]`,
// with a zone ("fe80::1%eth0") for a link-local one. It returns the
// address as a URL's host writes it, in canonical form (so that "::1" and
// "0::1" share the agent's session) and with the zone's "%" escaped.
// A zone is an interface name, made of what a plain host name is made of:
// anything else ("%25", "/") could change what the URL means.
func ipv6Host(host string) (string, bool) {
	if strings.HasPrefix(host, "[") != strings.HasSuffix(host, "]") {
		return "", false
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	addr, err := netip.ParseAddr(host)
	if err != nil || !addr.Is6() || !plainHost(addr.Zone()) {
		return "", false
	}
	lit := addr.WithZone("").String()
	if z := addr.Zone(); z != "" {
		lit += "%25" + z
	}
	return "[" + lit + "]", true
}

// fillIPv6 puts the bracketed address lit in template's {host}, which
// must be the whole host of the URL's authority, bare (`ssh ::1` with
// ws://{host}:8081, as a name would fill it) or in brackets of the
// template's own (ws://[{host}]:8081), and appear nowhere else: an
// address inside a name, a path or credentials means nothing, and its
// colons there could be taken for a port.
func fillIPv6(template, host, lit string) (string, error) {
	_, rest, ok := strings.Cut(template, "://")
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	after, whole := strings.CutPrefix(rest[:end], "[{host}]")
	if !whole {
		after, whole = strings.CutPrefix(rest[:end], "{host}")
	}
	if !ok || !whole || strings.Count(template, "{host}") != 1 || !portOnly(after) {
		return "", fmt.Errorf("%w: host %q is an IPv6 address, which can fill only a {host} that is the URL's whole host, as in ws://{host}:8081 or ws://[{host}]:8081, not %q", ErrBadURL, host, template)
	}
	at := len(template) - len(rest)
	return template[:at] + lit + after + rest[end:], nil
}

// portOnly reports whether s, what follows the host in an authority, is
// nothing or a colon and digits (checkURL checks the port's range).
func portOnly(s string) bool {
	if s == "" {
		return true
	}
	if s[0] != ':' {
		return false
	}
	for _, c := range []byte(s[1:]) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
