package client

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/internal/neterrno"
	"github.com/sandmux/sandmux/mux"
)

// Sentinel errors of the client package.
var (
	// ErrInvalidConfig wraps every configuration validation failure.
	ErrInvalidConfig = errors.New("invalid client config")
	// ErrBadURL means a URL or URL template cannot be used.
	ErrBadURL = errors.New("bad url")
	// ErrBadHeader means a --header value is not "Name: value".
	ErrBadHeader = errors.New("bad header")
	// ErrRawTarget means a target was requested from a server that runs
	// in raw mode, which can only reach its one default target.
	ErrRawTarget = errors.New("server does not speak sandmux (raw WebSocket bridge); it cannot pick a --target")
	// ErrRawUsed means a raw-mode session's single connection was taken.
	ErrRawUsed = errors.New("raw-mode session already carries its one connection")
	// ErrNotHTTP means the server answered the upgrade with bytes that
	// are not HTTP (an SSH banner): the URL names the wrong port.
	ErrNotHTTP = errors.New("the server did not answer in HTTP")
	// ErrTLSPort means a ws:// upgrade reached a server that speaks TLS
	// on that port: the URL wants wss://.
	ErrTLSPort = errors.New("the server speaks TLS on this port")
	// ErrNoWelcome ends a new session whose WebSocket was lost before the
	// server answered its hello: there is no id to resume it with.
	ErrNoWelcome = errors.New("the connection was lost before the server accepted the session; run the command again")
	// ErrNotSOCKS5 means a socks5:// or socks5h:// proxy answered the
	// greeting with something other than SOCKS version 5.
	ErrNotSOCKS5 = errors.New("not a SOCKS5 proxy")
	// ErrSOCKSAuthFailed means a SOCKS5 proxy rejected the user name and
	// password of its URL (RFC 1929).
	ErrSOCKSAuthFailed = errors.New("the proxy rejected the user name and password")
	// ErrSOCKSAuthNeeded means a SOCKS5 proxy wants a user name and
	// password that its URL does not give.
	ErrSOCKSAuthNeeded = errors.New("the proxy requires a user name and password")
	// ErrSOCKSClosed means a SOCKS5 proxy hung up on CONNECT without a
	// reply, as `ssh -D` does when it cannot reach the server.
	ErrSOCKSClosed = errors.New("the proxy closed the connection instead of answering CONNECT")
	// ErrSOCKSAuthMethod means a SOCKS5 proxy accepts none of the
	// authentication methods the client speaks (none, user/password).
	ErrSOCKSAuthMethod = errors.New("the proxy accepts neither no authentication nor a user name and password")
)

// DialError is a failure to establish the WebSocket. Its text is the one
// line a user sees: the URL, what went wrong, and what to try.
type DialError struct {
	URL string
	// StatusCode is the HTTP status when the server answered, else 0.
	StatusCode int
	// Detail is the server's one-line explanation, if it sent one.
	Detail string
	// Edge is the message an edge proxy before the server answered with
	// in JSON, such as E2B's "The sandbox was not found", shown beside
	// the hint: it says what happened, not what to do.
	Edge string
	// RetryAfter is how soon a server that refused the upgrade as busy
	// (503 or 429 with a Retry-After in seconds) asked to be tried again;
	// zero when it did not.
	RetryAfter time.Duration
	Err        error
}

// Error renders the failure for a terminal.
func (e *DialError) Error() string {
	if e.StatusCode != 0 {
		msg := fmt.Sprintf("%s: %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
		if e.Detail != "" {
			// A sandmux server's own explanation already says what to do.
			return msg + ": " + e.Detail
		}
		if e.Edge != "" {
			msg += ": " + e.Edge
		}
		return msg + " (" + statusHint(e.StatusCode) + ")"
	}
	return fmt.Sprintf("%s: %s (%s)", e.URL, describe(e.Err), netHint(e.Err))
}

// Unwrap exposes the cause.
func (e *DialError) Unwrap() error { return e.Err }

// Temporary reports whether redialing may help: authentication and
// addressing failures need the user, not a retry loop.
func (e *DialError) Temporary() bool {
	switch e.StatusCode {
	case 0:
		if pe := (*ProxyError)(nil); errors.As(e.Err, &pe) {
			return pe.temporary()
		}
		var dns *net.DNSError
		if errors.As(e.Err, &dns) && dns.IsNotFound || errors.Is(e.Err, http.ErrSchemeMismatch) || errors.Is(e.Err, ErrNotHTTP) || errors.Is(e.Err, ErrTLSPort) {
			return false
		}
		return !isTLSTrustError(e.Err)
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusBadRequest, http.StatusUpgradeRequired,
		http.StatusRequestHeaderFieldsTooLarge, // the same headers go with every dial
		http.StatusOK:                          // a plain HTTP server: the URL or port is wrong
		return false
	}
	return !isRedirect(e.StatusCode)
}

// droppedUnanswered reports whether the connection was closed or reset
// before the server answered the upgrade: no status, and so nothing of
// a session sent on it.
func (e *DialError) droppedUnanswered() bool {
	return e.StatusCode == 0 && (errors.Is(e.Err, io.EOF) || errors.Is(e.Err, io.ErrUnexpectedEOF) || neterrno.Is(e.Err, syscall.ECONNRESET))
}

// isRedirect reports whether code is an HTTP redirect, which the dial
// reports rather than follows.
func isRedirect(code int) bool { return code >= 300 && code < 400 }

func statusHint(code int) string {
	switch code {
	case http.StatusUnauthorized:
		return "check --token, --token-file or SANDMUX_TOKEN"
	case http.StatusForbidden:
		return "check --token, SANDMUX_TOKEN and --header values such as e2b-traffic-access-token"
	case http.StatusNotFound:
		return "check the URL and that the sandbox exists"
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return "is `sandmux server` running in the sandbox on that port?"
	case http.StatusConflict:
		return "the sandbox is paused or changing state: resume it, or try again in a moment"
	case http.StatusRequestHeaderFieldsTooLarge:
		return "the handshake's headers are too large: check the --header values"
	case http.StatusTooManyRequests:
		return "too many connections to the sandbox at once; try again in a moment"
	case http.StatusUpgradeRequired, http.StatusBadRequest:
		return "is that a sandmux server, and are both sides up to date?"
	case http.StatusOK:
		return "that is a plain HTTP server, not a WebSocket endpoint; check the URL and port"
	}
	if isRedirect(code) {
		return "the server redirects elsewhere; sandmux does not follow redirects: check the URL"
	}
	return "the server or an edge proxy refused the WebSocket upgrade"
}

func describe(err error) string {
	var dns *net.DNSError
	var pe *ProxyError
	switch {
	case errors.As(err, &pe):
		return pe.what()
	case errors.As(err, &dns):
		return "cannot resolve " + dns.Name
	case neterrno.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case certHostError(err) != nil:
		return "TLS certificate not valid for this host: " + strings.TrimPrefix(certHostError(err).Error(), "x509: ")
	case certExpired(err):
		return "TLS certificate expired or not yet valid"
	case isTLSTrustError(err):
		return "TLS certificate not trusted"
	case errors.Is(err, http.ErrSchemeMismatch):
		return "the server answered in plain HTTP, not TLS"
	case errors.Is(err, ErrTLSPort):
		return ErrTLSPort.Error()
	case errors.Is(err, ErrNotHTTP):
		var nh *notHTTPError
		if errors.As(err, &nh) {
			return fmt.Sprintf("%v: it sent %q", ErrNotHTTP, nh.first)
		}
		return ErrNotHTTP.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// net/http's "Get URL: EOF": closed before any answer.
		return "the connection was closed before any answer"
	case neterrno.Is(err, syscall.ECONNRESET):
		// Reset as it was made, or in the TLS handshake (a connection
		// accepted and at once reset, by a middlebox, an edge, a server
		// going down, or one past its --max-handshakes closing it with
		// the ClientHello unread): the unread request's reset is
		// closedUnanswered, above.
		return "the connection was reset before any answer"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	return redactedText(err)
}

// redactedText is err's text with the URL that net/http quotes in it (a
// *url.Error's, query values and all: an edge's access token, say)
// redacted as RedactURL does, so that it is no more shown than the URL
// the line starts with.
func redactedText(err error) string {
	s := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) && ue.URL != "" {
		red := RedactURL(ue.URL)
		s = strings.ReplaceAll(s, strconv.Quote(ue.URL), strconv.Quote(red))
		s = strings.ReplaceAll(s, ue.URL, red)
	}
	return s
}

func netHint(err error) string {
	var dns *net.DNSError
	var pe *ProxyError
	switch {
	case errors.As(err, &pe):
		return pe.Hint()
	case errors.As(err, &dns):
		return "check the host name, the sandbox id and your network"
	case neterrno.Is(err, syscall.ECONNREFUSED):
		return "is `sandmux server` listening there?"
	case certHostError(err) != nil:
		// Go checks the name before the chain, so a private CA may be
		// missing too; --ca alone, which the user may have passed,
		// does not mend the name.
		return "connect by a name the certificate lists, or give the server a certificate whose subject alternative names include this one; a private CA also needs --ca FILE; --insecure skips verification"
	case certExpired(err):
		return "renew the server's certificate, or check this machine's clock; --insecure skips verification"
	case isTLSTrustError(err):
		return "pass the server's CA with --ca FILE, or --insecure to skip verification"
	case errors.Is(err, http.ErrSchemeMismatch):
		return "use ws:// for a server without TLS, or check the port"
	case errors.Is(err, ErrTLSPort):
		return "use wss:// for a server with TLS"
	case errors.Is(err, ErrNotHTTP):
		return "that port is not `sandmux server`'s; check the port in --url: the server listens on 8081"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "a busy server closes connections beyond its --max-handshakes: try again in a moment; else check that the port is `sandmux server`'s"
	case neterrno.Is(err, syscall.ECONNRESET):
		return "try again in a moment, as a server past its --max-handshakes resets connections; if it keeps happening, check the URL and your network"
	}
	return "check the URL and your network"
}

// certHostError is err's certificate refusal for the host name (a
// certificate for another name, or one with a common name and no
// subject alternative names, which Go no longer reads), if it is one.
func certHostError(err error) *x509.HostnameError {
	var hn x509.HostnameError
	if errors.As(err, &hn) {
		return &hn
	}
	return nil
}

// certExpired reports whether err refuses a certificate for its dates.
func certExpired(err error) bool {
	var ci x509.CertificateInvalidError
	return errors.As(err, &ci) && ci.Reason == x509.Expired
}

func isTLSTrustError(err error) bool {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var ve *tls.CertificateVerificationError
	return errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &ve)
}

// DescribeLoss says in a few words why a session's WebSocket was lost,
// for a user reading status rather than the library's chain of reads;
// what is not particular to a loss is worded as for a dial (describe).
func DescribeLoss(err error) string {
	var ce websocket.CloseError
	switch {
	case err == nil:
		return "no reason given"
	case errors.Is(err, mux.ErrSessionDead):
		return err.Error() // says for how long nothing came
	case errors.As(err, &ce):
		return "the server closed the WebSocket: " + cmp.Or(Printable(ce.Reason), ce.Code.String())
	}
	if w, ok := mux.LossWords(err); ok {
		return w
	}
	return describe(err)
}

// notHTTPError is ErrNotHTTP with the first line the server sent.
type notHTTPError struct {
	first string
	err   error // the HTTP client's own error
}

func (e *notHTTPError) Error() string {
	return fmt.Sprintf("%v: it sent %q (%v)", ErrNotHTTP, e.first, e.err)
}

// Is makes errors.Is(err, ErrNotHTTP) hold.
func (e *notHTTPError) Is(target error) bool { return target == ErrNotHTTP }

// Unwrap exposes the HTTP client's error.
func (e *notHTTPError) Unwrap() error { return e.err }

// notHTTP turns a failed upgrade whose answer did not start as HTTP does
// (bc's first bytes) into a *notHTTPError; any other err is returned as is.
func notHTTP(err error, bc *mux.BufConn) error {
	if bc == nil {
		return err
	}
	head := bc.Head()
	if len(head) == 0 && bc.Silent() && !errors.Is(err, io.EOF) {
		// A busy server's hang-up, which net/http reports as "server
		// closed idle connection" when it came before the request was
		// counted as sent, or as a reset when the request was unread.
		return closedUnanswered{err}
	}
	if len(head) == 0 || bytes.HasPrefix(head, []byte("HTTP/")) || bytes.HasPrefix([]byte("HTTP/"), head) {
		return err
	}
	if tlsRecord(head) {
		return tlsPortError{err}
	}
	first, _, _ := bytes.Cut(head, []byte("\n"))
	return &notHTTPError{first: strings.TrimRight(string(first), "\r"), err: err}
}

// closedUnanswered is a dial's error on a connection the server closed
// without a byte, which is io.EOF whatever the HTTP library called it.
type closedUnanswered struct{ err error }

func (e closedUnanswered) Error() string   { return e.err.Error() }
func (e closedUnanswered) Unwrap() []error { return []error{io.EOF, e.err} }
