//go:build !windows

package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// lock takes an exclusive flock on path, polling so ctx can end the wait.
// The kernel drops the lock if this process dies, so it can never go stale.
func lock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w; %s", err, fixDir)
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
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !sleepCtx(ctx, 10*time.Millisecond) {
			_ = f.Close()
			return nil, ctx.Err()
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
	if err := cmd.Start(); err != nil {
		return err
	}
	// Detached on purpose: the agent is re-parented to init when this
	// process exits, and nothing here waits for it.
	return cmd.Process.Release()
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
		if line, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n"); line != "" {
			return fmt.Errorf("%w: %s", err, line)
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
