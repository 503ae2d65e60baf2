package server

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// canonicalTarget normalises "host:port" so that one target has one
// spelling: IP literals in their canonical form (so "[::1]:22" and
// "[0:0::1]:22" match), lower-case names, and decimal ports without leading
// zeros ("022" is 22). The allowlist compares canonical forms only, and the
// server dials the canonical form, never the client's spelling.
func canonicalTarget(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port: %w", s, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", fmt.Errorf("%q: port must be a number from 1 to 65535", s)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		// The zone stays: a link-local target needs it to be dialled.
		host = ip.Unmap().String()
	} else {
		host = strings.ToLower(strings.TrimSuffix(host, "."))
	}
	switch {
	case host == "":
		// Checked after the trailing dot goes: ".:22" would otherwise
		// become ":22", which net.Dial takes as this machine.
		return "", fmt.Errorf("%q: host is empty", s)
	case host[0] == '.' || host[len(host)-1] == '.' || strings.Contains(host, ".."):
		// No name has an empty label, and "a..:22" would otherwise
		// become "a.:22" here and "a:22" on a second pass.
		return "", fmt.Errorf("%q: host name has an empty label (two dots in a row, or a dot first)", s)
	}
	return net.JoinHostPort(host, strconv.FormatUint(p, 10)), nil
}

// CheckTarget fails unless s is a target the server could allow:
// HOST:PORT, the host an IP address or a host name and the port a number
// from 1 to 65535. Clients check a target with it before they dial for
// it, and the CLI the server's --target and --allow; a host that is the
// only fault is a *TargetHostError.
func CheckTarget(s string) error {
	_, err := configTarget(s)
	return err
}

// allowlist holds the canonical targets a client may reach.
type allowlist struct {
	def     string
	allowed map[string]bool
}

func newAllowlist(def string, allow []string) (allowlist, error) {
	d, err := configTarget(def)
	if err != nil {
		return allowlist{}, err
	}
	a := allowlist{def: d, allowed: map[string]bool{d: true}}
	for _, t := range allow {
		c, err := configTarget(t)
		if err != nil {
			return allowlist{}, err
		}
		a.allowed[c] = true
	}
	return a, nil
}

// configTarget is canonicalTarget for the operator's --target and
// --allow, whose host must also be one the server could dial: an IP
// address or a host name. Anything else would be taken as a name that
// no request ever reaches, so an operator who meant a pattern or a
// range (10.0.0.0/8:22) would find every stream to it "not allowed",
// with nothing saying why.
func configTarget(s string) (string, error) {
	c, err := canonicalTarget(s)
	if err != nil {
		return "", err
	}
	host, _, _ := net.SplitHostPort(c)
	if _, err := netip.ParseAddr(host); err == nil {
		return c, nil
	}
	switch {
	case strings.ContainsAny(host, "*?"):
		return "", &TargetHostError{Target: s, Reason: "patterns are not supported; name each HOST:PORT"}
	case strings.Contains(host, "/"):
		return "", &TargetHostError{Target: s, Reason: "address ranges are not supported; name each HOST:PORT by its address"}
	case strings.ContainsFunc(host, func(r rune) bool { return !isNameByte(r) }):
		return "", &TargetHostError{Target: s, Reason: fmt.Sprintf("%q is neither an IP address nor a host name", host)}
	}
	return c, nil
}

// TargetHostError is a target whose port is right but whose host the
// server could never dial: a pattern, an address range, or a name with
// characters no host name has. Reason says what to write instead.
type TargetHostError struct {
	Target string
	Reason string
}

func (e *TargetHostError) Error() string { return fmt.Sprintf("%q: %s", e.Target, e.Reason) }

// isNameByte reports whether r may appear in a host name the resolver
// looks up: letters, digits, '-', and '_' and '.' as DNS names use them.
func isNameByte(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
}

// resolve maps a requested target to the canonical one to dial. ok is false
// when the target is malformed or not allowed; canonical is then the best
// spelling to report back.
func (a allowlist) resolve(requested string) (canonical string, ok bool) {
	if requested == "" {
		return a.def, true
	}
	c, err := canonicalTarget(requested)
	if err != nil {
		return requested, false
	}
	return c, a.allowed[c]
}
