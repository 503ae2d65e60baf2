//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/sandmux/sandmux/internal/sshtest"
)

// errSkipped marks a scenario that could not run here (a program is
// missing) as opposed to one that failed.
var errSkipped = errors.New("skipped")

// benchTB lets this program reuse internal/sshtest, whose helpers take a
// testing.TB. The embedded nil interface only supplies testing.TB's
// unexported method; every method sshtest calls is implemented below, and
// Fatal and Skip unwind with a panic that tbRun turns into an error, the
// way the testing package unwinds with runtime.Goexit.
type benchTB struct {
	testing.TB
	log io.Writer

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	errs     []string
}

// tbExit is the panic value of Fatal and Skip.
type tbExit struct {
	skip bool
	msg  string
}

func newBenchTB(log io.Writer) *benchTB { return &benchTB{log: log} }

func (t *benchTB) Helper()      {}
func (t *benchTB) Name() string { return "bench" }

func (t *benchTB) Log(args ...any) { fmt.Fprintln(t.log, args...) }
func (t *benchTB) Logf(format string, args ...any) {
	fmt.Fprintf(t.log, strings.TrimRight(format, "\n")+"\n", args...)
}

func (t *benchTB) Error(args ...any) { t.recordError(fmt.Sprint(args...)) }
func (t *benchTB) Errorf(format string, args ...any) {
	t.recordError(fmt.Sprintf(format, args...))
}

func (t *benchTB) recordError(msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed = true
	t.errs = append(t.errs, msg)
}

func (t *benchTB) Fatal(args ...any) { t.fatal(fmt.Sprint(args...)) }
func (t *benchTB) Fatalf(format string, args ...any) {
	t.fatal(fmt.Sprintf(format, args...))
}
func (t *benchTB) FailNow() { t.fatal("FailNow") }
func (t *benchTB) Fail()    { t.recordError("Fail") }

func (t *benchTB) fatal(msg string) {
	t.recordError(msg)
	panic(tbExit{msg: msg})
}

func (t *benchTB) Skip(args ...any) { panic(tbExit{skip: true, msg: fmt.Sprint(args...)}) }
func (t *benchTB) Skipf(format string, args ...any) {
	panic(tbExit{skip: true, msg: fmt.Sprintf(format, args...)})
}
func (t *benchTB) SkipNow()      { panic(tbExit{skip: true, msg: "SkipNow"}) }
func (t *benchTB) Skipped() bool { return false }

func (t *benchTB) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *benchTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *benchTB) TempDir() string {
	dir, err := os.MkdirTemp("", "smxb-ssh")
	if err != nil {
		t.Fatalf("TempDir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// finish runs the cleanups, last registered first, and reports every
// error recorded along the way.
func (t *benchTB) finish() error {
	t.mu.Lock()
	cs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.errs) > 0 {
		return errors.New(strings.Join(t.errs, "; "))
	}
	return nil
}

// tbRun calls f with t and turns a Fatal or Skip inside it into an error;
// a skip wraps errSkipped. On failure t's cleanups have already run.
func tbRun(t *benchTB, f func()) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		ex, ok := r.(tbExit)
		if !ok {
			panic(r)
		}
		_ = t.finish()
		if ex.skip {
			err = fmt.Errorf("%w: %s", errSkipped, ex.msg)
		} else {
			err = errors.New(ex.msg)
		}
	}()
	f()
	return nil
}

// sshd is the bench's throwaway OpenSSH server.
type sshd struct {
	*sshtest.Server
	t    *benchTB
	home string
}

// startSSHD starts sshd on 127.0.0.1 with sshtest's isolated config plus
// SetEnv HOME=<an empty directory>. The login shell then finds no rc file
// to run: as root on this machine ~/.bashrc runs `pyenv init`, about a
// second of CPU per command, which would swamp what the bench measures.
// Everything else about the login (key exchange, public-key auth, session
// channel, exec through the user's shell) is the real thing.
func startSSHD(log io.Writer) (*sshd, error) {
	t := newBenchTB(log)
	if err := tbRun(t, func() { sshtest.Require(t, "sshd", "ssh", "scp", "ssh-keygen") }); err != nil {
		return nil, err
	}
	home, err := os.MkdirTemp("", "smxb-home")
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = os.RemoveAll(home) })
	var srv *sshtest.Server
	err = tbRun(t, func() {
		srv = sshtest.StartWith(t, sshtest.Options{ExtraConfig: "SetEnv HOME=" + home})
	})
	if err != nil {
		return nil, err
	}
	return &sshd{Server: srv, t: t, home: home}, nil
}

// Close stops sshd and removes its files.
func (s *sshd) Close() error { return s.t.finish() }
