package agent

import (
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestGetsockoptCredOnARealKernel runs getsockoptCred, the raw read the
// BSDs without a typed getter use, against Linux's SO_PEERCRED: its struct
// ucred {pid, uid, gid} has NetBSD's field order, so the 12 bytes must
// arrive whole, in place, and nothing after them.
func TestGetsockoptCredOnARealKernel(t *testing.T) {
	dir := shortDir(t)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: SocketPath(dir), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.DialUnix("unix", nil, ln.Addr().(*net.UnixAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var b credBytes
	var gerr error
	if err := raw.Control(func(fd uintptr) { b, gerr = getsockoptCred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	if pid, uid, gid := credField(b, 0), unpcbidUID(b), credField(b, 8); pid != os.Getpid() || uid != os.Getuid() || gid != os.Getgid() {
		t.Errorf("getsockoptCred read pid %d uid %d gid %d, want %d %d %d", pid, uid, gid, os.Getpid(), os.Getuid(), os.Getgid())
	}
	if tail := [4]byte(b[12:]); tail != [4]byte{} {
		t.Errorf("bytes past the 12-byte struct: %x, want zeros", tail)
	}
}
