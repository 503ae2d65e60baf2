package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
)

// ErrUnsupported is what every agent entry point returns on Windows: the
// agent relies on flock, SO_PEERCRED and setsid.
var ErrUnsupported = errors.New("the shared agent is not supported on Windows; use --no-agent")

func lock(context.Context, string) (func(), error) { return nil, ErrUnsupported }

func holdStopping(string) (func(), error) { return nil, ErrUnsupported }

func stoppingNow(string) bool { return false }

// StartDetached is not supported on Windows.
func StartDetached(string, []string, []string) error { return ErrUnsupported }

// Spawn is not supported on Windows.
func Spawn(string, []string, []string) error { return ErrUnsupported }

func peerUID(*net.UnixConn) (int, error) { return -1, ErrUnsupported }

func fileOwner(os.FileInfo) (int, bool) { return 0, false }

func sendFiles(*net.UnixConn, ...*os.File) error { return ErrUnsupported }

func recvStdio(*net.UnixConn) (io.ReadCloser, io.WriteCloser, func(), error) {
	return nil, nil, nil, ErrUnsupported
}

func recvFile(*net.UnixConn, string) (*os.File, error) { return nil, ErrUnsupported }

// CloseOnExecFrom does nothing on Windows, where handles are not
// inherited unless asked for.
func CloseOnExecFrom(int) {}

// FdpassSocket is false on Windows, whose OpenSSH has no ProxyUseFdpass.
func FdpassSocket(*os.File) bool { return false }

func socketPair() (*os.File, *os.File, error) { return nil, nil, ErrUnsupported }

func passFD(*os.File, *os.File) error { return ErrUnsupported }
