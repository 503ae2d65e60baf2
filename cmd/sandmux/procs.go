package main

import (
	"os"
	"runtime"
)

// oneProc limits a process that only moves bytes to one OS thread running
// Go code at a time, unless the user set GOMAXPROCS. Such a process hands
// every chunk from one goroutine to the next; with more than one P the
// runtime wakes an idle thread for each hand-off (futex, spinning,
// sched_yield), and on a 2-core machine that cost a third of the tunnel's
// CPU per GiB for no throughput (README, Performance). One core moves far
// more than any WAN link carries. The embedded SSH server, whose
// encryption is real work, keeps the default.
func oneProc() {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	runtime.GOMAXPROCS(1)
}
