//go:build !unix

package sshd

import "golang.org/x/crypto/ssh"

// session refuses: running programs (processes, terminals, signals) is
// implemented for Unix systems only.
func (c *conn) session(nch ssh.NewChannel) {
	_ = nch.Reject(ssh.Prohibited, "sessions are not supported by the embedded server on this system")
}
