//go:build !windows

package agent

import (
	"os"
	"syscall"
)

// noFollow makes an open of a file in the agent's directory fail on a
// symbolic link (ELOOP) instead of following it.
const noFollow = syscall.O_NOFOLLOW

// linkCount is fi's number of hard links, where the system says.
func linkCount(fi os.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Nlink), true //nolint:unconvert // uint16 on macOS
}
