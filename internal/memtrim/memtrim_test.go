package memtrim

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// One trim for each time the process goes idle, after Quiet, and none
// while streams are open or once it has trimmed.
func TestRunTrimsOncePerIdlePeriod(t *testing.T) {
	var active atomic.Int64
	trims := make(chan time.Time, 10)
	cfg := Config{
		Active: active.Load,
		Quiet:  50 * time.Millisecond,
		Every:  5 * time.Millisecond,
		Trim:   func() bool { trims <- time.Now(); return true },
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); Run(ctx, cfg) }()
	defer func() { cancel(); wg.Wait() }()

	expectNone := func(within time.Duration, why string) {
		t.Helper()
		select {
		case <-trims:
			t.Fatal(why)
		case <-time.After(within):
		}
	}
	expectNone(200*time.Millisecond, "trimmed before any stream")
	for round := range 2 {
		active.Store(3)
		expectNone(200*time.Millisecond, "trimmed with streams open")
		idle := time.Now()
		active.Store(0)
		select {
		case at := <-trims:
			if at.Sub(idle) < cfg.Quiet {
				t.Fatalf("round %d: trimmed %v after the last stream ended, before Quiet (%v)", round, at.Sub(idle), cfg.Quiet)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: no trim once idle", round)
		}
		expectNone(200*time.Millisecond, "trimmed twice in one idle period")
	}
}

// A process idle for less than Quiet is not trimmed.
func TestRunWaitsOutQuiet(t *testing.T) {
	var reads atomic.Int64
	active := func() int64 { // a stream open for the first reads only
		if reads.Add(1) <= 3 {
			return 1
		}
		return 0
	}
	trimmed := false
	cfg := Config{Active: active, Quiet: time.Hour, Every: 5 * time.Millisecond, Trim: func() bool { trimmed = true; return true }}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	Run(ctx, cfg)
	if reads.Load() <= 3 {
		t.Fatalf("Active read %d times: the process never went idle", reads.Load())
	}
	if trimmed {
		t.Fatal("trimmed before Quiet had passed")
	}
}

// Heap gives back what pooled buffers held: they outlive one collection
// in the pool's victim cache, so the memory of a burst stayed with the
// process until the runtime's second forced collection, minutes later.
func TestHeapReturnsPooledMemory(t *testing.T) {
	held := func() uint64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapSys - ms.HeapReleased
	}
	var pool sync.Pool
	const chunk, n = 256 << 10, 512 // 128 MiB
	bufs := make([]*[]byte, n)
	for i := range bufs {
		b := make([]byte, chunk)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1 // every page touched, so resident
		}
		bufs[i] = &b
	}
	for _, b := range bufs {
		pool.Put(b)
	}
	bufs = nil
	before := held()
	if before < Threshold {
		t.Fatalf("the heap holds %d MiB, under the threshold (%d MiB)", before>>20, Threshold>>20)
	}
	runtime.GC() // what the runtime's forced collection does first
	if !Heap() {
		t.Fatal("Heap did not trim a heap over the threshold")
	}
	if after := held(); after > before/4 {
		t.Fatalf("the heap still holds %d MiB from the system, of %d before", after>>20, before>>20)
	}
	runtime.KeepAlive(&pool)
}
