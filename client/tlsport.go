package client

import (
	"bytes"
	"net/http"
)

// A ws:// upgrade that reaches a TLS port is answered in one of three
// ways. Go's net/http and nginx see an HTTP request where a ClientHello
// belongs and answer it in plain HTTP, 400 with a body that says so;
// some TLS stacks answer with a TLS alert record; OpenSSL 3's s_server
// and Go's crypto/tls without net/http close the connection without a
// byte, which cannot be told from a busy server's close and stays said
// as that.

// tlsPortBodies are what servers say in a 400's body to an HTTP request
// on their TLS port: Go's net/http, and nginx (whose page says it in
// its title and again in its heading).
var tlsPortBodies = [][]byte{
	[]byte("Client sent an HTTP request to an HTTPS server"),
	[]byte("The plain HTTP request was sent to HTTPS port"),
}

// tlsPortAnswer reports whether a refused upgrade's answer (its status
// and the first of its body) is a TLS server's to a plain HTTP request.
func tlsPortAnswer(resp *http.Response, body []byte) bool {
	if resp.StatusCode != http.StatusBadRequest {
		return false
	}
	for _, b := range tlsPortBodies {
		if bytes.Contains(body, b) {
			return true
		}
	}
	return false
}

// tlsRecord reports whether head, the first bytes a server sent, starts
// a TLS record: an alert (21) or a handshake (22), in a record version
// from SSL 3.0 (3.0) to TLS 1.2 (3.3), which TLS 1.3 records also carry.
func tlsRecord(head []byte) bool {
	return len(head) >= 3 && (head[0] == 21 || head[0] == 22) && head[1] == 3 && head[2] <= 4
}

// tlsPortError is ErrTLSPort over the HTTP client's own error.
type tlsPortError struct{ err error }

func (e tlsPortError) Error() string   { return ErrTLSPort.Error() + " (" + e.err.Error() + ")" }
func (e tlsPortError) Unwrap() []error { return []error{ErrTLSPort, e.err} }
