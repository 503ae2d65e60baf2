package main

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/sandmux/sandmux/internal/memtrim"
)

// moverGC is the GOGC of a process that only moves bytes: its heap is
// mostly the data buffered in flight and unread, in pooled byte slices
// that the collector need not scan, so a collection costs little, while
// Go's default lets the heap grow to twice what was live at the last
// one. Under load that doubled the RSS of a server buffering a few
// hundred MiB, and left it there once the load had passed (make soak:
// 20 sessions peaked at 581–634 MiB with the default, 384 with 25).
const moverGC = 25

// moverRuntime tunes a process that only moves bytes, unless the user
// set GOMAXPROCS or GOGC.
//
// One OS thread runs Go code at a time: such a process hands every chunk
// from one goroutine to the next; with more than one P the runtime wakes
// an idle thread for each hand-off (futex, spinning, sched_yield), and on
// a 2-core machine that cost a third of the tunnel's CPU per GiB for no
// throughput (README, Performance). One core moves far more than any WAN
// link carries. The embedded SSH server, whose encryption is real work,
// keeps the defaults.
//
// The heap may grow only a quarter beyond what was live (moverGC).
func moverRuntime() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(moverGC)
	}
}

// trimWhenIdle gives the process's spare heap back to the system each
// time carrying has read zero for a few seconds (memtrim), until the
// returned stop, which waits for it.
func trimWhenIdle(carrying func() int64) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		memtrim.Run(ctx, memtrim.DefaultConfig(carrying))
	}()
	return func() { cancel(); wg.Wait() }
}
