// Package e2e holds end-to-end tests of the sandmux binary: the real
// `sandmux server`, `sandmux proxy` and shared agent processes carrying the
// real OpenSSH clients (ssh, scp, sftp) to a throwaway sshd.
//
// The package has no code of its own; everything lives in _test.go files.
// TestMain builds the binary once (without -race) and every test drives it
// as a user would: through command lines, environment variables, exit
// codes, stderr lines and `sandmux status --json`.
package e2e
