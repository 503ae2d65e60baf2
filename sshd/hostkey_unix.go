//go:build unix

package sshd

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkKeyMode refuses a private key file that others may read or write,
// as OpenSSH does (sshkey_perm_ok): anyone who can read the host key can
// impersonate the server. Like OpenSSH it looks only at keys the server's
// own user owns: for one that another user (root) owns and lets this one
// read through its group, the fix would be that user's, and chmod 600
// would lock the server out.
func checkKeyMode(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) != os.Getuid() {
		return nil
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has permissions %04o (OpenSSH's sshd refuses such a key too); run chmod 600 %s (a mounted secret: mount it with mode 0600, e.g. defaultMode: 0600)", ErrHostKeyTooOpen, path, perm, path)
	}
	return nil
}
