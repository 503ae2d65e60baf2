//go:build !windows

package main

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// A proxy whose ssh died mid-stream writes stdout with no reader left.
// Where those writes go through the *os.File (macOS: no raw writes
// there), Go raised SIGPIPE for descriptor 1 and the proxy died on the
// spot, its stream never ended; stdoutEPIPE turns that into an EPIPE
// that pipeStdio takes for the end.
func TestStdoutEPIPENotSIGPIPE(t *testing.T) {
	if os.Getenv("SANDMUX_EPIPE_CHILD") == "1" {
		stdoutEPIPE()
		_, err := os.NewFile(1, "/dev/stdout").Write([]byte("x"))
		if !errors.Is(err, syscall.EPIPE) {
			os.Exit(3)
		}
		os.Exit(0)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Close() // the reader is gone
	defer w.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStdoutEPIPENotSIGPIPE$")
	cmd.Env = append(os.Environ(), "SANDMUX_EPIPE_CHILD=1")
	cmd.Stdout = w
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("the write to a stdout without a reader killed the process with %v", ws.Signal())
		}
	}
	if err != nil {
		t.Fatalf("child: %v (exit 3: the write did not fail with EPIPE)", err)
	}
}
