//go:build !windows

package agent

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

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
// end of a socket pair whose other end, returned, is ssh's, with stderr
// as ssh's stderr. The proxy's end is closed on return, as the proxy
// exits.
func openFdpass(t *testing.T, r *handoffRig, stderr *os.File) (sshSide *os.File, err error) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	proxyStdout := os.NewFile(uintptr(fds[0]), "proxy-stdout")
	defer proxyStdout.Close()
	sshSide = os.NewFile(uintptr(fds[1]), "ssh")
	t.Cleanup(func() { _ = sshSide.Close() })
	return sshSide, OpenFdpass(context.Background(), r.dir, noStart, r.req, proxyStdout, stderr)
}

// passedConn is the connection passed to ssh on sshSide.
func passedConn(t *testing.T, sshSide *os.File) net.Conn {
	t.Helper()
	passed := receiveFD(t, sshSide)
	conn, err := net.FileConn(passed)
	_ = passed.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// An --fdpass proxy's stream outlives the proxy: once OpenFdpass has
// returned (the proxy exits then, and its control connection closes),
// the socket ssh was passed carries the stream both ways, and its
// half-close ends it cleanly. Before, ssh got the stream's bytes where it
// waited for a descriptor.
func TestOpenFdpassStreamOutlivesProxy(t *testing.T) {
	r := newHandoffRig(t)
	sshSide, err := openFdpass(t, r, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	conn := passedConn(t, sshSide)
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
	sshSide, err := openFdpass(t, r, os.Stderr)
	if err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("OpenFdpass to a target the server refuses: %v, want its refusal", err)
	}
	n, _, _, _, rerr := unix.Recvmsg(int(sshSide.Fd()), make([]byte, 1), make([]byte, unix.CmsgSpace(4)), 0)
	if n != 0 || rerr != nil {
		t.Fatalf("ssh's side read %d bytes (%v), want EOF: nothing passed", n, rerr)
	}
}

// disownedRig runs serveDisowned on st as the agent does for an --fdpass
// proxy, sends it a socket and a stderr pipe as the proxy does, and
// returns ssh's side of the socket and the reading end of its stderr.
func disownedRig(t *testing.T, st net.Conn) (sshSide *os.File, stderr *os.File) {
	t.Helper()
	proxy, agentEnd, err := unixPair(t)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		serveDisowned(agentEnd, st, func(err error) error { return err }, slog.New(slog.DiscardHandler), "")
	}()
	t.Cleanup(func() {
		_ = st.Close()
		<-done
	})
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	proxySock, sshSide := os.NewFile(uintptr(fds[0]), "proxy"), os.NewFile(uintptr(fds[1]), "ssh")
	defer proxySock.Close()
	t.Cleanup(func() { _ = sshSide.Close() })
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	t.Cleanup(func() { _ = r.Close() })
	if err := sendFiles(proxy, proxySock, proxySock); err != nil {
		t.Fatal(err)
	}
	if err := sendFiles(proxy, w); err != nil {
		t.Fatal(err)
	}
	_ = proxy.SetReadDeadline(time.Now().Add(10 * time.Second))
	var taken reply
	if err := readMessage(proxy, &taken); err != nil || !taken.OK {
		t.Fatalf("answer to the descriptors: %+v, %v: want OK", taken, err)
	}
	return sshSide, r
}

// A cut of an --fdpass proxy's stream is told on ssh's stderr, as the
// proxy tells it, before ssh's connection closes (ssh exits then and
// prints its own line after it): the proxy is gone.
func TestDisownedCutToldOnSSHStderr(t *testing.T) {
	st := &cutStream{cut: make(chan struct{}), readCut: make(chan struct{}), closed: make(chan struct{})}
	sshSide, stderr := disownedRig(t, st)
	close(st.cut)
	close(st.readCut)
	_ = sshSide.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(sshSide); err != nil {
		t.Fatalf("ssh's connection after the cut: %v, want EOF", err)
	}
	_ = stderr.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(stderr)
	if want := "sandmux: " + errTestCut.Error() + "\n"; err != nil || string(got) != want {
		t.Fatalf("ssh's stderr %q (%v), want %q written before its connection closed", got, err, want)
	}
}

// The agent lets go of ssh's stderr as soon as ssh closes its connection
// (it exits), though the stream's far end has not finished: a caller
// reading ssh's stderr to its end ($(ssh ... 2>&1)) would wait for it.
func TestDisownedReleasesSSHStderr(t *testing.T) {
	st := &cutStream{cut: make(chan struct{}), readCut: make(chan struct{}), closed: make(chan struct{})}
	sshSide, stderr := disownedRig(t, halfClosable{st})
	_ = sshSide.Close()
	_ = stderr.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(stderr); err != nil || len(got) != 0 {
		t.Fatalf("ssh's stderr after ssh closed its connection: %q, %v: want EOF at once", got, err)
	}
}

// halfClosable is a stream whose write side closes alone, as a sandmux
// stream's does: its far end may go on sending.
type halfClosable struct{ *cutStream }

func (halfClosable) CloseWrite() error { return nil }
