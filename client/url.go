package client

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// DefaultURLTemplate reaches port 8081 of an E2B sandbox whose id is the
// ssh host name.
const DefaultURLTemplate = "wss://8081-{host}.e2b.app"

// ExpandURL replaces every "{host}" in template with host. A template
// without "{host}" is used as is. The result must be a ws:// or wss:// URL.
// host is a plain host name, or an IPv6 address (bracketed or not, with a
// zone or not) for a template whose {host} is the URL's whole host, which
// it fills in brackets (see fillIPv6).
func ExpandURL(template, host string) (string, error) {
	if strings.Contains(template, "{host}") {
		if host == "" {
			return "", fmt.Errorf("%w: %q needs a host name to fill {host}", ErrBadURL, template)
		}
		switch lit, v6 := ipv6Host(host); {
		case plainHost(host):
			template = strings.ReplaceAll(template, "{host}", host)
		case v6:
			filled, err := fillIPv6(template, host, lit)
			if err != nil {
				return "", err
			}
			template = filled
		default:
			return "", fmt.Errorf("%w: host %q is not a plain host name (pass the sandbox id, e.g. `sandmux proxy abc123`)", ErrBadURL, host)
		}
	}
	if err := checkURL(template); err != nil {
		return "", err
	}
	// A brace left is a mistyped placeholder ({hots}, {HOST}); in a path
	// it would be sent escaped and fail as a 401 or 404 that names the
	// token or the URL, not the typo. (A host is plain or an address, so
	// none is its;
	// and checkURL refused credentials, so the URL may be shown.)
	if strings.ContainsAny(template, "{}") {
		return "", badPlaceholder(template)
	}
	return template, nil
}

// plainHost reports whether host is made only of what host names and
// IPv4 addresses are made of. Anything else (percent escapes, non-ASCII
// that IDNA may map to a dot or a colon, braces, control characters) could
// change which server the URL, and the token sent with it, reaches.
func plainHost(host string) bool {
	for _, c := range []byte(host) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_':
		default:
			return false
		}
	}
	return true
}

// badPlaceholder is the error for a URL with a brace left in it after
// {host} was filled: a mistyped placeholder.
func badPlaceholder(s string) error {
	return fmt.Errorf("%w: %q: the only placeholder is {host}, in lower case", ErrBadURL, s)
}

// checkURL accepts ws:// and wss:// URLs with a host and a valid port.
func checkURL(s string) error {
	if s != strings.TrimSpace(s) {
		return fmt.Errorf("%w: %q has white space around it: give the URL alone", ErrBadURL, s)
	}
	if !strings.Contains(s, "://") {
		if l := strings.ToLower(s); strings.HasPrefix(l, "ws:") || strings.HasPrefix(l, "wss:") {
			return fmt.Errorf("%w: %q: the scheme takes two slashes, as in ws://127.0.0.1:8081 or wss://8081-{host}.e2b.app", ErrBadURL, s)
		}
		return fmt.Errorf("%w: %q has no scheme: start it with ws:// or wss:// (for example wss://8081-{host}.e2b.app)", ErrBadURL, s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return unparsable(s, err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return fmt.Errorf("%w: %q: scheme must be ws:// or wss:// (for example wss://8081-{host}.e2b.app)", ErrBadURL, s)
	}
	if u.Hostname() == "" {
		// "ws://:" has u.Host ":" but no host in it.
		return fmt.Errorf("%w: %q has no host", ErrBadURL, s)
	}
	if u.User != nil {
		return fmt.Errorf("%w: %q: credentials in the URL are not supported; use --token or --header", ErrBadURL, RedactURL(s))
	}
	if strings.Contains(u.Hostname(), ":") && !strings.HasPrefix(u.Host, "[") {
		// url.Parse takes "::1:8081" and "host:8081:22" for a host
		// with a colon and a port; the dial then fails to make its
		// request, which would be retried as an outage.
		return fmt.Errorf("%w: %q: the host has a colon: an IPv6 address goes in brackets, as in ws://[::1]:8081, and a host has one :PORT", ErrBadURL, s)
	}
	// Port is "" for "host:" as for "host"; the colon says one was meant.
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%w: %q: port %q is not 1-65535", ErrBadURL, s, p)
		}
	}
	return nil
}

// unparsable is the error for s, which url.Parse refused with err. s is
// shown without its user information, which may hold a password: the URL
// could not be checked for credentials.
func unparsable(s string, err error) error {
	shown := s
	scheme, rest, _ := strings.Cut(s, "://")
	if at := strings.LastIndex(authority(rest), "@"); at >= 0 {
		shown = scheme + "://xxxxx" + rest[at:]
	}
	switch port, badPort := badPort(rest); {
	case strings.ContainsAny(s, "{}"):
		return badPlaceholder(shown)
	case strings.Contains(s, "%h"):
		// websocat's recipe spelt the URL wss://8081-%h.e2b.app: ssh
		// expands %h in a ProxyCommand line, never in a variable or in
		// what `sandmux ssh-config` writes (which doubles the %).
		return fmt.Errorf("%w: %q: %%h is ssh's token, which ssh expands only where it is written in the ProxyCommand line; write {host}, sandmux's, as in wss://8081-{host}.e2b.app", ErrBadURL, shown)
	case badPort:
		// url.Parse's "invalid port" would name no range.
		return fmt.Errorf("%w: %q: port %q is not 1-65535", ErrBadURL, shown, port)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // without the URL, which it repeats
	}
	return fmt.Errorf("%w: %q: %w", ErrBadURL, shown, err)
}

// authority returns the host part of rest, a URL after its "://": up to
// its path, query or fragment.
func authority(rest string) string {
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		return rest[:i]
	}
	return rest
}

// badPort returns the port of a URL url.Parse refused, given after its
// "://", when that port is what is wrong with it (":-1", ":abc").
func badPort(rest string) (string, bool) {
	hostport := authority(rest)
	if at := strings.LastIndex(hostport, "@"); at >= 0 {
		hostport = hostport[at+1:]
	}
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", false
	}
	n, err := strconv.Atoi(port)
	return port, err != nil || n < 1 || n > 65535
}

// ParseHeader parses one --header value, "Name: value".
func ParseHeader(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, ":")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if !ok || !isToken(name) || strings.ContainsFunc(value, func(r rune) bool { return isControl(r) && r != '\t' }) {
		return "", "", fmt.Errorf("%w: %q is not \"Name: value\" (e.g. --header 'e2b-traffic-access-token: TOKEN')", ErrBadHeader, s)
	}
	return http.CanonicalHeaderKey(name), value, nil
}

// RedactURL hides credentials and query values, which may carry tokens,
// so that a URL can be logged or shown in status.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparsable url>"
	}
	if u.User != nil {
		u.User = url.User("xxxxx")
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q.Set(k, "xxxxx")
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// isToken reports whether s is an HTTP token (RFC 9110 5.6.2), what a
// header name must be: the handshake would fail on anything else, with
// a message about net/http rather than the flag.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
