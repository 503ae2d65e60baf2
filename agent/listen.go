package agent

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
)

// newSocketName is where the agent binds its socket before moving it into
// place; no longer than SocketName, so a directory short enough for one
// is short enough for the other.
const newSocketName = "agent.new"

// listen makes the agent's socket appear at path only once it accepts
// connections, with its final mode: it binds and listens on a temporary
// name and renames that over path (replacing a stale socket left by a
// killed agent). A socket file seen between bind and listen refuses
// connections, and a proxy that sees one starts another agent. The caller
// holds the run lock, so no other agent uses the temporary name. The
// returned close stops the listener and removes path if it is still this
// socket (removeIfSame); it may be called
// more than once, and must be before the run lock is released, as the
// next agent's socket takes the same path.
func listen(path string) (*net.UnixListener, func(), error) {
	tmp := filepath.Join(filepath.Dir(path), newSocketName)
	_ = os.Remove(tmp) // left by an agent killed while starting
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		// A file system without Unix sockets (a network home directory,
		// an exFAT or SMB volume on macOS) is told what to do about it.
		return nil, nil, fmt.Errorf("listen on %s: %w; %s", tmp, err, fixDir)
	}
	// Removed by close under its final name instead.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		_ = ln.Close()
		_ = os.Remove(tmp)
		return nil, nil, fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = ln.Close()
		_ = os.Remove(tmp)
		return nil, nil, fmt.Errorf("move the agent socket into place: %w", err)
	}
	mine, err := os.Stat(path)
	if err != nil {
		_ = ln.Close()
		return nil, nil, fmt.Errorf("the agent socket: %w", err)
	}
	return ln, sync.OnceFunc(func() {
		_ = ln.Close()
		removeIfSame(path, mine)
	}), nil
}

// removeIfSame removes path if it is still the file mine. An agent whose
// directory was removed and made again under it (a user's runtime
// directory, removed at their last logout while the agent lived on, and
// made again at the next login) no longer owns the socket at path: it is
// the next agent's, which would be left unreachable, holding the run
// lock, so that no proxy could start another until it exited.
func removeIfSame(path string, mine os.FileInfo) {
	if cur, err := os.Stat(path); err == nil && os.SameFile(cur, mine) {
		_ = os.Remove(path)
	}
}
