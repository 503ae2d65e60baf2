package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The agent's socket appears only once it accepts connections, already
// private: a proxy that found it refusing (bound, not yet listening)
// started a second agent, and tests that waited for the file raced the
// agent's listen. Stopping the agent removes it.
func TestSocketAppearsReady(t *testing.T) {
	for i := range 30 {
		dir := shortDir(t)
		a, err := New(DefaultConfig(dir))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- a.Serve(context.Background()) }()
		path := SocketPath(dir)
		var fi os.FileInfo
		for deadline := time.Now().Add(5 * time.Second); fi == nil; {
			if time.Now().After(deadline) {
				t.Fatal("the agent's socket did not appear")
			}
			fi, _ = os.Stat(path) // as early as the file can be seen
		}
		c, cerr := connect(context.Background(), dir)
		if cerr == nil {
			_ = c.Close()
		}
		if err := Stop(context.Background(), dir); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if cerr != nil {
			t.Fatalf("start %d: the socket refused a connection as it appeared: %v", i, cerr)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Fatalf("start %d: the socket appeared with mode %v, want 0600", i, m)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("start %d: the socket is still there after the agent stopped: %v", i, err)
		}
	}
}

// An agent whose directory was removed and made again under it, and a
// new agent started there, leaves the new agent's socket alone on exit:
// removing it left the new agent unreachable and holding its run lock,
// so that every proxy failed to start another until it exited.
func TestExitKeepsAnotherAgentsSocket(t *testing.T) {
	dir := shortDir(t)
	path := SocketPath(dir)
	_, closeOld, err := listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := EnsureDir(dir); err != nil {
		t.Fatal(err)
	}
	_, closeNew, err := listen(path)
	if err != nil {
		t.Fatal(err)
	}
	closeOld()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the exiting agent removed the socket of the agent after it: %v", err)
	}
	closeNew()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the socket is still there after its agent closed it: %v", err)
	}
}

// An agent directory where no socket can be made (a network home
// directory, a macOS exFAT or SMB volume: EOPNOTSUPP) says what to do, as
// every other unusable agent directory does.
func TestListenFailureSaysWhatToDo(t *testing.T) {
	dir := shortDir(t)
	// A directory in the way of the temporary name stands for a file
	// system that cannot hold a socket: the bind fails either way.
	if err := os.MkdirAll(filepath.Join(dir, newSocketName, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, _, err := listen(SocketPath(dir))
	if err == nil || !strings.Contains(err.Error(), fixDir) {
		t.Fatalf("listen = %v, want an error that ends %q", err, fixDir)
	}
}
