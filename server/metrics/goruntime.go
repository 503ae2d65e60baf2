package metrics

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The runtime/metrics samples the go_ families are made of, by index
// into rmNames.
const (
	rmHeapObjectsBytes = iota
	rmHeapUnusedBytes
	rmHeapFreeBytes
	rmHeapReleasedBytes
	rmHeapStacksBytes
	rmOSStacksBytes
	rmMSpanInuseBytes
	rmMSpanFreeBytes
	rmMCacheInuseBytes
	rmMCacheFreeBytes
	rmBuckHashBytes
	rmGCMetadataBytes
	rmOtherBytes
	rmTotalBytes
	rmAllocsBytes
	rmAllocsObjects
	rmFreesObjects
	rmTinyAllocsObjects
	rmHeapObjects
	rmHeapGoalBytes
	rmGOGC
	rmGOMEMLIMIT
	rmGOMAXPROCS
	rmCount
)

var rmNames = [rmCount]string{
	rmHeapObjectsBytes:  "/memory/classes/heap/objects:bytes",
	rmHeapUnusedBytes:   "/memory/classes/heap/unused:bytes",
	rmHeapFreeBytes:     "/memory/classes/heap/free:bytes",
	rmHeapReleasedBytes: "/memory/classes/heap/released:bytes",
	rmHeapStacksBytes:   "/memory/classes/heap/stacks:bytes",
	rmOSStacksBytes:     "/memory/classes/os-stacks:bytes",
	rmMSpanInuseBytes:   "/memory/classes/metadata/mspan/inuse:bytes",
	rmMSpanFreeBytes:    "/memory/classes/metadata/mspan/free:bytes",
	rmMCacheInuseBytes:  "/memory/classes/metadata/mcache/inuse:bytes",
	rmMCacheFreeBytes:   "/memory/classes/metadata/mcache/free:bytes",
	rmBuckHashBytes:     "/memory/classes/profiling/buckets:bytes",
	rmGCMetadataBytes:   "/memory/classes/metadata/other:bytes",
	rmOtherBytes:        "/memory/classes/other:bytes",
	rmTotalBytes:        "/memory/classes/total:bytes",
	rmAllocsBytes:       "/gc/heap/allocs:bytes",
	rmAllocsObjects:     "/gc/heap/allocs:objects",
	rmFreesObjects:      "/gc/heap/frees:objects",
	rmTinyAllocsObjects: "/gc/heap/tiny/allocs:objects",
	rmHeapObjects:       "/gc/heap/objects:objects",
	rmHeapGoalBytes:     "/gc/heap/goal:bytes",
	rmGOGC:              "/gc/gogc:percent",
	rmGOMEMLIMIT:        "/gc/gomemlimit:bytes",
	rmGOMAXPROCS:        "/sched/gomaxprocs:threads",
}

// memstat is one go_memstats_ family: the sum of some runtime/metrics
// samples, as client_golang derives its MemStats-named metrics from
// runtime/metrics (the help texts, theirs too, say which).
type memstat struct {
	name, help, typ string
	of              []int
}

var memstats = []memstat{
	{"go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use. Equals to /memory/classes/heap/objects:bytes.", typeGauge, []int{rmHeapObjectsBytes}},
	{"go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already. Equals to /gc/heap/allocs:bytes.", typeCounter, []int{rmAllocsBytes}},
	{"go_memstats_buck_hash_sys_bytes", "Number of bytes used by the profiling bucket hash table. Equals to /memory/classes/profiling/buckets:bytes.", typeGauge, []int{rmBuckHashBytes}},
	{"go_memstats_frees_total", "Total number of heap objects frees. Equals to /gc/heap/frees:objects + /gc/heap/tiny/allocs:objects.", typeCounter, []int{rmFreesObjects, rmTinyAllocsObjects}},
	{"go_memstats_gc_sys_bytes", "Number of bytes used for garbage collection system metadata. Equals to /memory/classes/metadata/other:bytes.", typeGauge, []int{rmGCMetadataBytes}},
	{"go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use, same as go_memstats_alloc_bytes. Equals to /memory/classes/heap/objects:bytes.", typeGauge, []int{rmHeapObjectsBytes}},
	{"go_memstats_heap_idle_bytes", "Number of heap bytes waiting to be used. Equals to /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", typeGauge, []int{rmHeapReleasedBytes, rmHeapFreeBytes}},
	{"go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes", typeGauge, []int{rmHeapObjectsBytes, rmHeapUnusedBytes}},
	{"go_memstats_heap_objects", "Number of currently allocated objects. Equals to /gc/heap/objects:objects.", typeGauge, []int{rmHeapObjects}},
	{"go_memstats_heap_released_bytes", "Number of heap bytes released to OS. Equals to /memory/classes/heap/released:bytes.", typeGauge, []int{rmHeapReleasedBytes}},
	{"go_memstats_heap_sys_bytes", "Number of heap bytes obtained from system. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes + /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", typeGauge, []int{rmHeapObjectsBytes, rmHeapUnusedBytes, rmHeapReleasedBytes, rmHeapFreeBytes}},
	{"go_memstats_mallocs_total", "Total number of heap objects allocated, both live and gc-ed. Semantically a counter version for go_memstats_heap_objects gauge. Equals to /gc/heap/allocs:objects + /gc/heap/tiny/allocs:objects.", typeCounter, []int{rmAllocsObjects, rmTinyAllocsObjects}},
	{"go_memstats_mcache_inuse_bytes", "Number of bytes in use by mcache structures. Equals to /memory/classes/metadata/mcache/inuse:bytes.", typeGauge, []int{rmMCacheInuseBytes}},
	{"go_memstats_mcache_sys_bytes", "Number of bytes used for mcache structures obtained from system. Equals to /memory/classes/metadata/mcache/inuse:bytes + /memory/classes/metadata/mcache/free:bytes.", typeGauge, []int{rmMCacheInuseBytes, rmMCacheFreeBytes}},
	{"go_memstats_mspan_inuse_bytes", "Number of bytes in use by mspan structures. Equals to /memory/classes/metadata/mspan/inuse:bytes.", typeGauge, []int{rmMSpanInuseBytes}},
	{"go_memstats_mspan_sys_bytes", "Number of bytes used for mspan structures obtained from system. Equals to /memory/classes/metadata/mspan/inuse:bytes + /memory/classes/metadata/mspan/free:bytes.", typeGauge, []int{rmMSpanInuseBytes, rmMSpanFreeBytes}},
	{"go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place. Equals to /gc/heap/goal:bytes.", typeGauge, []int{rmHeapGoalBytes}},
	{"go_memstats_other_sys_bytes", "Number of bytes used for other system allocations. Equals to /memory/classes/other:bytes.", typeGauge, []int{rmOtherBytes}},
	{"go_memstats_stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments. Equals to /memory/classes/heap/stacks:bytes.", typeGauge, []int{rmHeapStacksBytes}},
	{"go_memstats_stack_sys_bytes", "Number of bytes obtained from system for stack allocator. Equals to /memory/classes/heap/stacks:bytes + /memory/classes/os-stacks:bytes.", typeGauge, []int{rmHeapStacksBytes, rmOSStacksBytes}},
	{"go_memstats_sys_bytes", "Number of bytes obtained from system. Equals to /memory/classes/total:byte.", typeGauge, []int{rmTotalBytes}},
	{"go_gc_gogc_percent", "Heap size target percentage configured by the user, otherwise 100. This value is set by the GOGC environment variable, and the runtime/debug.SetGCPercent function. Sourced from /gc/gogc:percent.", typeGauge, []int{rmGOGC}},
	{"go_gc_gomemlimit_bytes", "Go runtime memory limit configured by the user, otherwise math.MaxInt64. This value is set by the GOMEMLIMIT environment variable, and the runtime/debug.SetMemoryLimit function. Sourced from /gc/gomemlimit:bytes.", typeGauge, []int{rmGOMEMLIMIT}},
	{"go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting, or the number of operating system threads that can execute user-level Go code simultaneously. Sourced from /sched/gomaxprocs:threads.", typeGauge, []int{rmGOMAXPROCS}},
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

	// ReadGCStats takes the heap lock, not the world, like runtime/metrics.
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

	samples := make([]metrics.Sample, rmCount)
	for i := range samples {
		samples[i].Name = rmNames[i]
	}
	metrics.Read(samples)
memstat:
	for _, ms := range memstats {
		var v uint64
		for _, i := range ms.of {
			// A sample this Go does not have (KindBad) leaves its
			// metric out rather than report a made-up part of it.
			if samples[i].Value.Kind() != metrics.KindUint64 {
				continue memstat
			}
			v += samples[i].Value.Uint64()
		}
		e.family(ms.name, ms.help, ms.typ).add("", float64(v))
	}
}
