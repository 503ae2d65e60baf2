//go:build !windows

package agent

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// holdStopping takes a shared flock on path, for an agent that has begun
// to stop; the returned function releases it. Shared, so that two agents
// stopping at once (the next one started meanwhile) both hold it. A
// checker (stoppingNow) holds it exclusively only for an instant, so a
// short wait gets it; a file system without locks gets nothing.
func holdStopping(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|noFollow, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(time.Second)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
		if err == nil {
			return func() {
				_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			_ = f.Close()
			return nil, err
		}
		time.Sleep(time.Millisecond)
	}
}

// stoppingNow reports whether some agent holds path (holdStopping): it
// has stopped accepting but not yet exited. The kernel drops the lock of
// a process that dies, so a killed agent never looks as if stopping.
func stoppingNow(path string) bool {
	f, err := os.OpenFile(path, os.O_RDWR|noFollow, 0)
	if err != nil {
		return false // no agent has ever stopped in this directory
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return false
	}
	return errors.Is(err, unix.EWOULDBLOCK)
}
