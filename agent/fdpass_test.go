//go:build !windows

package agent

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// receiveFD reads a descriptor as ssh's mm_receive_fd does: one byte of
// data carrying exactly one SCM_RIGHTS descriptor.
func receiveFD(t *testing.T, sock *os.File) *os.File {
	t.Helper()
	b, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), b, oob, 0)
	if err != nil || n != 1 {
		t.Fatalf("recvmsg: %d bytes, %v: want the one byte that carries the descriptor", n, err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control messages %v, %v: want one", msgs, err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("passed descriptors %v, %v: want one", fds, err)
	}
	return os.NewFile(uintptr(fds[0]), "passed")
}

// openFdpass runs OpenFdpass as an --fdpass proxy under ssh does, on one
// end of a socket pair whose other end, returned, is ssh's. The proxy's
// end is closed on return, as the proxy exits.
func openFdpass(t *testing.T, r *handoffRig) (sshSide *os.File, err error) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	proxyStdout := os.NewFile(uintptr(fds[0]), "proxy-stdout")
	defer proxyStdout.Close()
	sshSide = os.NewFile(uintptr(fds[1]), "ssh")
	t.Cleanup(func() { _ = sshSide.Close() })
	return sshSide, OpenFdpass(context.Background(), r.dir, noStart, r.req, proxyStdout)
}

// An --fdpass proxy's stream outlives the proxy: once OpenFdpass has
// returned (the proxy exits then, and its control connection closes),
// the socket ssh was passed carries the stream both ways, and its
// half-close ends it cleanly. Before, ssh got the stream's bytes where it
// waited for a descriptor.
func TestOpenFdpassStreamOutlivesProxy(t *testing.T) {
	r := newHandoffRig(t)
	sshSide, err := openFdpass(t, r)
	if err != nil {
		t.Fatal(err)
	}
	passed := receiveFD(t, sshSide)
	conn, err := net.FileConn(passed)
	_ = passed.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	data := bytes.Repeat([]byte("fdpass-0123456789"), 1<<16)
	go func() {
		_, _ = conn.Write(data)
		_ = conn.(*net.UnixConn).CloseWrite()
	}()
	got, err := io.ReadAll(conn)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("echoed %d bytes (%v), want the %d sent", len(got), err, len(data))
	}
}

// A stream the server refuses (a target it does not allow) is refused
// before ssh gets a descriptor, though a proxy's stream is otherwise
// opened without waiting for the server's reply: the --fdpass proxy,
// gone once ssh has the connection, is the one to say why.
func TestOpenFdpassRefusedPassesNothing(t *testing.T) {
	r := newHandoffRig(t)
	r.req.Target = "10.255.255.1:1" // not allowed: the open fails
	sshSide, err := openFdpass(t, r)
	if err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("OpenFdpass to a target the server refuses: %v, want its refusal", err)
	}
	n, _, _, _, rerr := unix.Recvmsg(int(sshSide.Fd()), make([]byte, 1), make([]byte, unix.CmsgSpace(4)), 0)
	if n != 0 || rerr != nil {
		t.Fatalf("ssh's side read %d bytes (%v), want EOF: nothing passed", n, rerr)
	}
}
