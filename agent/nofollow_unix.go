//go:build !windows

package agent

import "syscall"

// noFollow makes an open of a file in the agent's directory fail on a
// symbolic link (ELOOP) instead of following it.
const noFollow = syscall.O_NOFOLLOW
