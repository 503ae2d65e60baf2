// Package sshd is an SSH server for the user it runs as, so that a
// sandbox needs nothing but the sandmux binary: `sandmux server --ssh
// embedded` serves it on a loopback listener and makes that its default
// target.
//
// It is built on golang.org/x/crypto/ssh and offers what ssh, scp and
// sftp use:
//
//   - public-key authentication only, against an authorized_keys file
//     (read again for every connection) and keys given as text; "none",
//     passwords and keyboard-interactive are refused;
//   - sessions: "exec" (Shell -c COMMAND) and "shell" (a login shell),
//     with stdin, stdout and stderr on separate streams, or on a terminal
//     after "pty-req" (with the client terminal's modes, on Linux;
//     "window-change" resizes it); "env" for LANG, LC_*
//     and TERM; "signal"; the exit status (or the killing signal) once the
//     program has ended and its output is drained;
//   - the "sftp" subsystem in process (github.com/pkg/sftp), which modern
//     scp uses too;
//   - "direct-tcpip" channels (ssh -L, ssh -W) to the targets
//     Config.AllowTarget allows.
//
// The host key is an ed25519 key in Config.StateDir, generated from
// crypto/rand when the first connection needs it, never at start-up: a
// sandbox template is snapshotted after its start command runs, and every
// sandbox made from it must have a key of its own.
//
// The package never prints, never reads environment variables and never
// exits; it logs through the Config's slog.Logger. Close ends every
// connection, hangs up every program and waits for every goroutine.
package sshd
