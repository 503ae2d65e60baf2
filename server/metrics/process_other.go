//go:build !linux

package metrics

// writeProcess adds nothing: the process_ metrics come from /proc, which
// only Linux has in the form process_linux.go reads. (client_golang
// covers macOS and Windows through cgo and syscalls; sandmux servers run
// on Linux.)
func writeProcess(*exposition) {}
