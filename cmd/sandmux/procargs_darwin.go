package main

import "golang.org/x/sys/unix"

// processArgs is pid's command line, from kern.procargs2 (as ps reads
// it): macOS has no /proc, and without it any process that took a
// finished forward's pid was listed by `sandmux status` as that forward,
// for the user to kill.
func processArgs(pid int) ([]string, error) {
	b, err := unix.SysctlRaw("kern.procargs2", pid)
	if err != nil {
		return nil, err
	}
	return parseProcArgs2(b)
}
