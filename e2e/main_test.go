//go:build linux

package e2e

import (
	"errors"
	"fmt"
	"io"
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

// buildBinary puts the binary under test into dir: a copy of
// $SANDMUX_TEST_BIN when set (make test passes the `make build` binary, so
// the suite does not build it again), else one built as `make build`
// builds it (its tags, -trimpath, CGO off), which shares its compiled
// packages with make build and the bench. The binary is built without
// -race even when the tests run with it: the processes under test are the
// product as shipped, and the race detector would multiply the CPU they
// take from ssh and sshd on a small machine. It is a copy, not the path
// itself, because another uid runs it (TestAgentSocketRefusesOtherUser)
// and the checkout may sit in a directory only its owner can enter.
func buildBinary(dir string) error {
	out := filepath.Join(dir, "sandmux")
	if bin := os.Getenv("SANDMUX_TEST_BIN"); bin != "" {
		if err := copyExecutable(bin, out); err != nil {
			return fmt.Errorf("SANDMUX_TEST_BIN: %w", err)
		}
	} else if err := goBuild(out); err != nil {
		return err
	}
	// MkdirTemp made the directory 0700.
	return os.Chmod(dir, 0o755)
}

// goBuild builds ./cmd/sandmux into out with the Makefile's TAGS.
func goBuild(out string) error {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(gomod))
	if mod == "" || mod == os.DevNull {
		return errors.New("not inside the sandmux module (go env GOMOD is empty)")
	}
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "urfave_cli_no_docs", "-o", out, "./cmd/sandmux")
	cmd.Dir = filepath.Dir(mod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w\n%s", err, b)
	}
	return nil
}

// copyExecutable copies the program at src to dst, executable by all.
func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
