package agent

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A real cut of an --fdpass proxy's stream (its session ends, resumption
// off) is on ssh's stderr, in one line, by the time ssh's connection
// reaches its end: ssh exits then, and the proxy that would have said it
// is long gone.
func TestFdpassCutToldBeforeSSHsEnd(t *testing.T) {
	r := newHandoffRig(t)
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer errR.Close()
	sshSide, err := openFdpass(t, r, errW)
	_ = errW.Close()
	if err != nil {
		t.Fatal(err)
	}
	conn := passedConn(t, sshSide)
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	echoOne(t, conn)
	_ = r.srv.Close() // ends its sessions; resumption is off
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("ssh's connection after the cut: %v, want its end", err)
	}
	if n, err := unix.IoctlGetInt(int(errR.Fd()), unix.SIOCINQ); err != nil || n == 0 {
		t.Fatalf("ssh's stderr holds %d bytes (%v) when its connection ends; want the cut told", n, err)
	}
	_ = errR.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(errR)
	if err != nil || !strings.HasPrefix(string(got), "sandmux: connection to box lost") || strings.Count(string(got), "\n") != 1 {
		t.Fatalf("ssh's stderr %q (%v); want one line saying the connection to box was lost", got, err)
	}
}
