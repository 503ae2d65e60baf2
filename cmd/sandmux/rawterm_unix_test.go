//go:build unix

package main

import (
	"bytes"
	"io"
	"os"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"
)

// ssh puts its terminal in raw mode for a session; a proxy's error line
// written there with a bare "\n" left ssh's next line starting where it
// ended, and did not start on a line of its own.
func TestRawTerminalLines(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	w := rawTermWriter{f: tty}
	if rawTerminal(tty) {
		t.Fatal("a new terminal reads as raw")
	}
	if _, err := term.MakeRaw(int(tty.Fd())); err != nil {
		t.Fatal(err)
	}
	if !rawTerminal(tty) {
		t.Fatal("a raw terminal does not read as raw")
	}
	printError(w, tty, "connection to abc lost")
	if _, err := io.WriteString(w, "level=ERROR msg=x\r\nnext\n"); err != nil {
		t.Fatal(err)
	}
	want := "\r\nsandmux: connection to abc lost\r\nlevel=ERROR msg=x\r\nnext\r\n"
	got := make([]byte, 0, len(want))
	_ = ptmx.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 256)
	for len(got) < len(want) {
		n, err := ptmx.Read(buf)
		if err != nil {
			t.Fatalf("read %q, then %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != want {
		t.Errorf("terminal got %q, want %q", got, want)
	}
	// A pipe or file is written as it is.
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	printError(rawTermWriter{f: pw}, pw, "x")
	pw.Close()
	if b, _ := io.ReadAll(r); !bytes.Equal(b, []byte("sandmux: x\n")) {
		t.Errorf("pipe got %q", b)
	}
}
