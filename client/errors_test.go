package client_test

import (
	"errors"
	"fmt"
	"io"
	"net"
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
		{websocket.CloseError{Code: websocket.StatusGoingAway, Reason: "server shutting down"}, "the server closed the WebSocket: server shutting down"},
		{os.ErrDeadlineExceeded, "timed out"},
		{errors.New("something else"), "something else"},
	} {
		if got := client.DescribeLoss(c.err); got != c.want {
			t.Errorf("DescribeLoss(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
