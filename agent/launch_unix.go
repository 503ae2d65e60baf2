//go:build !windows

package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// lock takes an exclusive flock on path, polling so ctx can end the wait.
// The kernel drops the lock if this process dies, so it can never go stale.
func lock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|noFollow, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w%s; %s", err, symlinkHint(path, err), fixDir)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() {
				_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			_ = f.Close()
			// ENOTSUP, ENOLCK: a file system without locks (a
			// network home directory).
			return nil, fmt.Errorf("lock %s: %w; %s", path, err, fixDir)
		}
		if !sleepCtx(ctx, 10*time.Millisecond) {
			_ = f.Close()
			return nil, fmt.Errorf("%w: waited for %s, held by another sandmux process (a proxy starting the agent, stopped or waiting for it); see %s",
				ctx.Err(), path, filepath.Join(filepath.Dir(path), LogName))
		}
	}
}

// StartDetached starts exe with args as a background agent in its own
// session (setsid), so it outlives the ssh that started the proxy, with
// stdio on /dev/null so it never holds ssh's pipes open. env is the
// child's whole environment; pass one without credentials.
func StartDetached(exe string, args, env []string) error {
	cmd := exec.Command(exe, args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// As any daemon: not in the starter's working directory, which it
	// would keep busy (a USB disk or a network mount that then cannot be
	// unmounted) for as long as it lives. Its paths are absolute.
	cmd.Dir = "/"
	// Nor may it keep what its starter inherited: a descriptor left open
	// across exec (a script's `exec 9>lock; flock 9`, a pipe a caller
	// reads to its end) would stay held until the agent exits, minutes
	// after the starter. Only this short-lived process (--spawn) calls
	// StartDetached, so marking them all close-on-exec costs nothing.
	CloseOnExecFrom(3)
	// Its stderr is a pipe until it listens (it then points it at
	// /dev/null): a failure before that (its log cannot be opened, its
	// directory is full) is told to the proxy at once, instead of after
	// the proxy's 10 s wait with a pointer to a log that may not exist.
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd.Stderr = w
	err = cmd.Start()
	_ = w.Close()
	if err != nil {
		return err
	}
	// Detached on purpose: the agent is re-parented to init when this
	// process exits, and nothing here waits for it.
	_ = cmd.Process.Release()
	_ = r.SetReadDeadline(time.Now().Add(startTimeout))
	b, _ := io.ReadAll(io.LimitReader(r, 4096))
	if line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n"); line != "" {
		return errors.New(strings.TrimPrefix(line, "sandmux: "))
	}
	return nil
}

// Spawn runs exe with args and waits for it to exit; exe is to start the
// agent with StartDetached and exit at once (`sandmux agent --spawn`).
// The agent is then nobody's child here: started directly, it stayed a
// child of its starter until that exited, and a long-lived starter
// (`sandmux forward`) collected one zombie for every agent that ended
// meanwhile, since nothing waits for a detached process. exe's first line
// on stderr, if any, is its error.
func Spawn(exe string, args, env []string) error {
	cmd := exec.Command(exe, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		// Its line is the reason; its exit status ("exit status 1: ")
		// would only come between the user and it.
		if line, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n"); line != "" {
			return errors.New(strings.TrimPrefix(line, "sandmux: "))
		}
		return err
	}
	return nil
}

// fileOwner returns the uid owning fi.
func fileOwner(fi os.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
