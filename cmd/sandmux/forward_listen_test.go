package main

import (
	"net"
	"strings"
	"testing"
)

// -L on a local port already in use said only Go's "bind: address
// already in use"; it now says what to do, as the server's --listen does.
func TestForwardPortInUseSaysWhatToDo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	spec := port + ":127.0.0.1:22"
	// Port 1 of the server is never dialled: listening fails first.
	_, _, err = runApp(t, "forward", "--no-agent", "--url", "ws://127.0.0.1:1", "-L", spec, "abc")
	want := "-L " + spec + ": 127.0.0.1:" + port + " is in use (another forward, or a program listening there?): pick another local port, or 0 for a free one"
	if err == nil || err.Error() != want {
		t.Fatalf("forward on a port in use: %v\nwant %s", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is not one line: %q", err)
	}
}
