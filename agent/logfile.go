package agent

import (
	"fmt"
	"os"
	"sync"
)

// LogFile is an append-only log capped at Max bytes: when full it is
// renamed to NAME.1 (replacing the previous one) and started afresh, so a
// long-lived agent never fills the disk.
type LogFile struct {
	path string
	max  int64

	mu   sync.Mutex
	f    *os.File
	size int64
}

// OpenLogFile opens (creating 0600) the log at path, capped at max bytes.
func OpenLogFile(path string, max int64) (*LogFile, error) {
	l := &LogFile{path: path, max: max}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

// open does not follow a symbolic link at the log's path, nor write to a
// file with other hard links: whoever could put either in the directory
// (a user who can write its parent and swapped the directory after
// EnsureDir checked it) would have the agent append to a file of their
// choosing with the user's rights, ~/.bashrc say.
func (l *LogFile) open() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|noFollow, 0o600)
	if err != nil {
		return fmt.Errorf("open log: %w%s", err, symlinkHint(l.path, err))
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("stat log: %w", err)
	}
	// O_NOFOLLOW does not see a hard link, which such a user can make
	// to a file of ours wherever the system lets anyone link to any
	// file (macOS; Linux without fs.protected_hardlinks).
	if n, ok := linkCount(fi); ok && n > 1 {
		_ = f.Close()
		return fmt.Errorf("open log: %s has %d hard links, so it is another file too, which the agent does not write to: remove it", l.path, n)
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// Write appends p, rotating first when p would pass the cap.
func (l *LogFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.size+int64(len(p)) > l.max && l.size > 0 {
		_ = l.f.Close()
		_ = os.Rename(l.path, l.path+".1")
		if err := l.open(); err != nil {
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

// Close closes the file.
func (l *LogFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// symlinkHint explains an open that failed on a symbolic link (ELOOP on
// Linux and macOS, EMLINK on FreeBSD), or is "".
func symlinkHint(path string, err error) string {
	if fi, lerr := os.Lstat(path); err == nil || lerr != nil || fi.Mode()&os.ModeSymlink == 0 {
		return ""
	}
	return fmt.Sprintf(" (%s is a symbolic link, which the agent does not follow: remove it)", path)
}
