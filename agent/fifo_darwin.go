package agent

import (
	"os"
	"syscall"
)

// pollableFIFO is false for a named pipe (mkfifo) on macOS, whose kqueue
// reports no end when its last writer closes (golang.org/issue/24164; Go's
// own os.OpenFile keeps such a FIFO out of its poller): polled, a stream
// read from one never ended. An anonymous pipe, as ssh gives its
// ProxyCommand, is polled correctly, and has no device (XNU's pipe_stat
// leaves st_dev 0), which a FIFO on a file system has.
func pollableFIFO(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || st.Mode&syscall.S_IFMT != syscall.S_IFIFO || st.Dev == 0
}
