package client_test

import (
	"errors"
	"fmt"
	"io"
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
		{websocket.CloseError{Code: websocket.StatusGoingAway, Reason: "server shutting down"}, "the server closed the WebSocket: server shutting down"},
		{os.ErrDeadlineExceeded, "timed out"},
		{errors.New("something else"), "something else"},
	} {
		if got := client.DescribeLoss(c.err); got != c.want {
			t.Errorf("DescribeLoss(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
