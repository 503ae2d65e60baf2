package client_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/mux"
)

func TestDescribeLoss(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, "no reason given"},
		{fmt.Errorf("%w: nothing received for 30s", mux.ErrSessionDead), "session stopped responding: nothing received for 30s"},
		{fmt.Errorf("failed to get reader: %w", &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}), "the connection was reset"},
		{fmt.Errorf("failed to read frame header: %w", io.ErrUnexpectedEOF), "the connection was closed"},
		// ss -K on the client's socket, or a network manager doing the
		// same on a network change: the WebSocket library's chain of
		// reads said nothing a user could use.
		{fmt.Errorf("failed to get reader: failed to read frame header: %w", &net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNABORTED}}), "the connection was aborted by this computer"},
		{fmt.Errorf("failed to get reader: %w", &os.SyscallError{Syscall: "read", Err: syscall.EHOSTUNREACH}), "the network to the server went away"},
		// The same on Windows, whose network errors carry Winsock's
		// codes, which errors.Is never matched with the Unix-named errnos.
		{fmt.Errorf("failed to get reader: %w", &net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "wsarecv", Err: syscall.Errno(10053)}}), "the connection was aborted by this computer"}, // WSAECONNABORTED
		{fmt.Errorf("failed to get reader: %w", &net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "wsarecv", Err: syscall.Errno(10054)}}), "the connection was reset"},                    // WSAECONNRESET
		{fmt.Errorf("failed to get reader: %w", &os.SyscallError{Syscall: "wsarecv", Err: syscall.Errno(10051)}), "the network to the server went away"},                                                    // WSAENETUNREACH
		{fmt.Errorf("failed to get reader: %w", &os.SyscallError{Syscall: "wsarecv", Err: syscall.Errno(10065)}), "the network to the server went away"},                                                    // WSAEHOSTUNREACH
		{websocket.CloseError{Code: websocket.StatusGoingAway, Reason: "server shutting down"}, "the server closed the WebSocket: server shutting down"},
		{os.ErrDeadlineExceeded, "timed out"},
		{errors.New("something else"), "something else"},
	} {
		if got := client.DescribeLoss(c.err); got != c.want {
			t.Errorf("DescribeLoss(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// A dial Windows refused (WSAECONNREFUSED) gets the words and the hint
// of a refused dial elsewhere, not Winsock's sentence and "check the URL
// and your network".
func TestWindowsRefusedDialHint(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connectex", Err: syscall.Errno(10061)}}
	err := &client.DialError{URL: "ws://127.0.0.1:1", Err: refused}
	want := "ws://127.0.0.1:1: connection refused (is `sandmux server` listening there?)"
	if got := err.Error(); got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

// A connection reset before the server answered, in the TCP connect (the
// chaos run's fault proxy resetting a connection it had just accepted; a
// middlebox or an edge doing the same): said in sandmux's words, not as
// the library's chain "failed to WebSocket dial: failed to send handshake
// request: Get URL: dial tcp ADDR: connect: connection reset by peer",
// and worth another try. The same with Windows's WSAECONNRESET.
func TestResetDialWords(t *testing.T) {
	for _, code := range []syscall.Errno{syscall.ECONNRESET, 10054} {
		reset := fmt.Errorf("failed to WebSocket dial: failed to send handshake request: %w", &url.Error{
			Op: "Get", URL: "http://127.0.0.1:1",
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: code}},
		})
		err := &client.DialError{URL: "ws://127.0.0.1:1", Err: reset}
		want := "ws://127.0.0.1:1: the connection was reset before any answer (try again in a moment, as a server past its --max-handshakes resets connections; if it keeps happening, check the URL and your network)"
		if got := err.Error(); got != want {
			t.Errorf("errno %d: %q, want %q", code, got, want)
		}
		if !err.Temporary() {
			t.Errorf("errno %d: a reset dial should be worth retrying", code)
		}
	}
}
