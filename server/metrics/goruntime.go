package metrics

import (
	"runtime"
	"runtime/debug"
	"time"
)

// memstat is one go_memstats_ family, read from runtime.MemStats. It is
// MemStats rather than runtime/metrics because runtime/metrics' package
// initialisation (~0.9 ms here) would run in every sandmux process,
// `sandmux proxy` under each ssh included, while only a metrics scrape
// needs it; ReadMemStats stops the world for microseconds, once a scrape.
// Names, types and help texts are client_golang's.
type memstat struct {
	name, help, typ string
	of              func(*runtime.MemStats) uint64
}

var memstats = []memstat{
	{"go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use. Equals to /memory/classes/heap/objects:bytes.", typeGauge, func(m *runtime.MemStats) uint64 { return m.Alloc }},
	{"go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already. Equals to /gc/heap/allocs:bytes.", typeCounter, func(m *runtime.MemStats) uint64 { return m.TotalAlloc }},
	{"go_memstats_buck_hash_sys_bytes", "Number of bytes used by the profiling bucket hash table. Equals to /memory/classes/profiling/buckets:bytes.", typeGauge, func(m *runtime.MemStats) uint64 { return m.BuckHashSys }},
	{"go_memstats_frees_total", "Total number of heap objects frees. Equals to /gc/heap/frees:objects + /gc/heap/tiny/allocs:objects.", typeCounter, func(m *runtime.MemStats) uint64 { return m.Frees }},
	{"go_memstats_gc_sys_bytes", "Number of bytes used for garbage collection system metadata. Equals to /memory/classes/metadata/other:bytes.", typeGauge, func(m *runtime.MemStats) uint64 { return m.GCSys }},
	{"go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use, same as go_memstats_alloc_bytes. Equals to /memory/classes/heap/objects:bytes.", typeGauge, func(m *runtime.MemStats) uint64 { return m.HeapAlloc }},
	{"go_memstats_heap_idle_bytes", "Number of heap bytes waiting to be used. Equals to /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", typeGauge, func(m *runtime.MemStats) uint64 { return m.HeapIdle }},
	{"go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes", typeGauge, func(m *runtime.MemStats) uint64 { return m.HeapInuse }},
	{"go_memstats_heap_objects", "Number of currently allocated objects. Equals to /gc/heap/objects:objects.", typeGauge, func(m *runtime.MemStats) uint64 { return m.HeapObjects }},
	{"go_memstats_heap_released_bytes", "Number of heap bytes released to OS. Equals to /memory/classes/heap/released:bytes.", typeGauge, func(m *runtime.MemStats) uint64 { return m.HeapReleased }},
	{"go_memstats_heap_sys_bytes", "Number of heap bytes obtained from system. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes + /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", typeGauge, func(m *runtime.MemStats) uint64 { return m.HeapSys }},
	{"go_memstats_mallocs_total", "Total number of heap objects allocated, both live and gc-ed. Semantically a counter version for go_memstats_heap_objects gauge. Equals to /gc/heap/allocs:objects + /gc/heap/tiny/allocs:objects.", typeCounter, func(m *runtime.MemStats) uint64 { return m.Mallocs }},
	{"go_memstats_mcache_inuse_bytes", "Number of bytes in use by mcache structures. Equals to /memory/classes/metadata/mcache/inuse:bytes.", typeGauge, func(m *runtime.MemStats) uint64 { return m.MCacheInuse }},
	{"go_memstats_mcache_sys_bytes", "Number of bytes used for mcache structures obtained from system. Equals to /memory/classes/metadata/mcache/inuse:bytes + /memory/classes/metadata/mcache/free:bytes.", typeGauge, func(m *runtime.MemStats) uint64 { return m.MCacheSys }},
	{"go_memstats_mspan_inuse_bytes", "Number of bytes in use by mspan structures. Equals to /memory/classes/metadata/mspan/inuse:bytes.", typeGauge, func(m *runtime.MemStats) uint64 { return m.MSpanInuse }},
	{"go_memstats_mspan_sys_bytes", "Number of bytes used for mspan structures obtained from system. Equals to /memory/classes/metadata/mspan/inuse:bytes + /memory/classes/metadata/mspan/free:bytes.", typeGauge, func(m *runtime.MemStats) uint64 { return m.MSpanSys }},
	{"go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place. Equals to /gc/heap/goal:bytes.", typeGauge, func(m *runtime.MemStats) uint64 { return m.NextGC }},
	{"go_memstats_other_sys_bytes", "Number of bytes used for other system allocations. Equals to /memory/classes/other:bytes.", typeGauge, func(m *runtime.MemStats) uint64 { return m.OtherSys }},
	{"go_memstats_stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments. Equals to /memory/classes/heap/stacks:bytes.", typeGauge, func(m *runtime.MemStats) uint64 { return m.StackInuse }},
	{"go_memstats_stack_sys_bytes", "Number of bytes obtained from system for stack allocator. Equals to /memory/classes/heap/stacks:bytes + /memory/classes/os-stacks:bytes.", typeGauge, func(m *runtime.MemStats) uint64 { return m.StackSys }},
	{"go_memstats_sys_bytes", "Number of bytes obtained from system. Equals to /memory/classes/total:byte.", typeGauge, func(m *runtime.MemStats) uint64 { return m.Sys }},
}

// gcQuantiles label go_gc_duration_seconds's quantiles, those
// debug.ReadGCStats computes when asked for five: minimum, quartiles,
// maximum.
var gcQuantiles = [...]string{"0", "0.25", "0.5", "0.75", "1"}

// writeGoRuntime adds the go_ families of client_golang's Go collector
// (its default set), with their names, types and help texts.
func writeGoRuntime(e *exposition) {
	e.family("go_goroutines", "Number of goroutines that currently exist.", typeGauge).
		add("", float64(runtime.NumGoroutine()))
	// Threads created, the count of the threadcreate profile: what
	// client_golang reports, and what pprof.Lookup("threadcreate").Count()
	// returns (it is this very call), without linking runtime/pprof.
	threads, _ := runtime.ThreadCreateProfile(nil)
	e.family("go_threads", "Number of OS threads created.", typeGauge).
		add("", float64(threads))
	e.family("go_info", "Information about the Go environment.", typeGauge).
		add("", 1, "version", runtime.Version())

	// ReadGCStats takes the heap lock, not the world.
	gc := debug.GCStats{PauseQuantiles: make([]time.Duration, len(gcQuantiles))}
	debug.ReadGCStats(&gc)
	f := e.family("go_gc_duration_seconds", "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.", typeSummary)
	for i, q := range gc.PauseQuantiles {
		f.add("", q.Seconds(), "quantile", gcQuantiles[i])
	}
	f.add("_sum", gc.PauseTotal.Seconds())
	f.add("_count", float64(gc.NumGC))
	e.family("go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", typeGauge).
		add("", float64(gc.LastGC.UnixNano())/1e9)

	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	for _, ms := range memstats {
		e.family(ms.name, ms.help, ms.typ).add("", float64(ms.of(&m)))
	}
	// Of the go_gc_ and go_sched_ settings, those with a read-only API
	// (GOGC has none outside runtime/metrics).
	e.family("go_gc_gomemlimit_bytes", "Go runtime memory limit configured by the user, otherwise math.MaxInt64. This value is set by the GOMEMLIMIT environment variable, and the runtime/debug.SetMemoryLimit function. Sourced from /gc/gomemlimit:bytes.", typeGauge).
		add("", float64(debug.SetMemoryLimit(-1)))
	e.family("go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting, or the number of operating system threads that can execute user-level Go code simultaneously. Sourced from /sched/gomaxprocs:threads.", typeGauge).
		add("", float64(runtime.GOMAXPROCS(0)))
}
