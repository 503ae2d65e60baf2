// Package memtrim hands a long-running tunnel process's spare heap back
// to the operating system once it has gone idle after moving data.
//
// A burst of streams whose readers lag (downloads through a slow client,
// hundreds at once) leaves the agent or server holding their receive
// buffers: hundreds of MiB, in pooled chunks that a sync.Pool keeps
// through one collection and frees at the next. A process with nothing
// to do allocates nothing, so those collections come only from the
// runtime's forced one every two minutes, and the memory went back to
// the system some four minutes after the last stream ended, or later
// (an agent held 300–730 MB that long after 200–260 slow downloads). On
// a laptop that shows in the activity monitor; in a sandbox it is memory
// the user's own programs may need.
package memtrim

import (
	"context"
	"runtime"
	"runtime/debug"
	"time"
)

// Config says when a process counts as idle and what trimming does.
type Config struct {
	// Active reports how many streams the process carries now.
	Active func() int64
	// Quiet is how long Active must stay at zero before a trim: a
	// stream that ends is often followed by the next (scp after ssh).
	Quiet time.Duration
	// Every is how often Active is read.
	Every time.Duration
	// Trim gives memory back and reports whether there was enough to be
	// worth it (Heap, by default).
	Trim func() bool
}

// DefaultConfig trims 5 s after the last of active's streams has ended.
func DefaultConfig(active func() int64) Config {
	return Config{Active: active, Quiet: 5 * time.Second, Every: time.Second, Trim: Heap}
}

// Run trims once each time the process goes idle, until ctx ends: once
// Active has read zero for Quiet, and not again until it has read more
// than zero since.
func Run(ctx context.Context, cfg Config) {
	tick := time.NewTicker(cfg.Every)
	defer tick.Stop()
	var idleSince time.Time
	trimmed := true // nothing to give back before the first stream
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if cfg.Active() > 0 {
			idleSince, trimmed = time.Time{}, false
			continue
		}
		if trimmed {
			continue
		}
		if idleSince.IsZero() {
			idleSince = time.Now()
		}
		if time.Since(idleSince) >= cfg.Quiet {
			cfg.Trim()
			trimmed = true
		}
	}
}

// Threshold is how much heap memory, held from the system, makes a trim
// worth its two collections; an idle agent or server holds 10–30 MiB.
const Threshold = 64 << 20

// Heap collects twice and returns the freed memory to the system at
// once, if the heap holds at least Threshold from it; it reports whether
// it did. Two collections, as a pooled buffer outlives the first in the
// pool's victim cache; FreeOSMemory's own collection is the second, and
// it then releases what the background scavenger would give back only a
// little at a time.
func Heap() bool {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapSys-ms.HeapReleased < Threshold {
		return false
	}
	runtime.GC()
	debug.FreeOSMemory()
	return true
}
