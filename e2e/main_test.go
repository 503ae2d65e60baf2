//go:build linux

package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// sandmuxBin is the binary under test, built once by TestMain.
var sandmuxBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "smxbin")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.Exit(1)
	}
	if err := buildBinary(dir); err != nil {
		_ = os.RemoveAll(dir)
		fmt.Fprintf(os.Stderr, "e2e: building sandmux: %v\n", err)
		os.Exit(1)
	}
	sandmuxBin = filepath.Join(dir, "sandmux")
	// Under nohup (`nohup make test`) this process ignores SIGHUP, and
	// every program it starts would inherit that: a server or forward
	// rightly leaves a hang-up it was started to ignore alone, and the
	// tests of what they do on SIGHUP would fail. While this process
	// takes SIGHUP itself, programs start with the default.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// buildBinary builds ./cmd/sandmux into dir. The binary is built without
// -race even when the tests run with it: the processes under test are the
// product as shipped, and the race detector would multiply the CPU they
// take from ssh and sshd on a small machine.
func buildBinary(dir string) error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return errors.New("not inside the sandmux module (go env GOMOD is empty)")
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "sandmux"), "./cmd/sandmux")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	// Another uid runs the binary in TestAgentSocketRefusesOtherUser, and
	// MkdirTemp made the directory 0700.
	return os.Chmod(dir, 0o755)
}
