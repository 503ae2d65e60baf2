//go:build linux

package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sandmux/sandmux/internal/procstat"
)

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

// median of xs (NaN when empty). xs is not modified.
func median(xs []float64) float64 { return quantile(xs, 0.5) }

// quantile is the nearest-rank quantile q of xs: the smallest sample with
// at least q of the samples at or below it. Nearest rank never invents a
// value that was not measured, which matters for p99 of a few hundred
// samples.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if q <= 0 {
		return s[0]
	}
	// For the median of an even count, nearest rank picks the lower middle
	// sample; the mean of the two middles is the usual and fairer figure
	// for two or four repetitions.
	if q == 0.5 && len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	rank := int(math.Ceil(q * float64(len(s))))
	return s[max(rank, 1)-1]
}

// mibps is the throughput of n bytes in d.
func mibps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return math.NaN()
	}
	return float64(n) / mib / d.Seconds()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// procCPU is a process's user+system CPU time so far, from /proc/PID/stat,
// which counts every thread of the process.
func procCPU(pid int) (time.Duration, error) {
	st, err := procstat.Read(pid)
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	return st.CPU(), nil
}

// selfCPU is this process's user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procRSS is a process's resident set in bytes (VmRSS of /proc/PID/status).
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc/%d/status: odd VmRSS line %q", pid, line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, err
		}
		return n * kib, nil
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS (process gone?)", pid)
}

// procCtxSwitches sums the voluntary and involuntary context switches of
// every live thread of a process. Each is a thread going to sleep or being
// preempted, the cost of goroutine hand-offs that syscall counts miss.
func procCtxSwitches(pid int) (int64, error) {
	dirs, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var total int64
	for _, d := range dirs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, d.Name()))
		if err != nil {
			continue // the thread exited meanwhile
		}
		for line := range strings.Lines(string(b)) {
			k, v, ok := strings.Cut(line, ":")
			if !ok || (k != "voluntary_ctxt_switches" && k != "nonvoluntary_ctxt_switches") {
				continue
			}
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				total += n
			}
		}
	}
	return total, nil
}

// settledRSS reads RSS a few times over d and returns the last reading, so
// a process that just received a burst of work has had time to run its GC
// and return freed pages; it gives the figure a user would see with ps.
func settledRSS(pid int, d time.Duration) (int64, error) {
	const steps = 4
	var rss int64
	for i := range steps {
		if i > 0 {
			time.Sleep(d / steps)
		}
		r, err := procRSS(pid)
		if err != nil {
			return 0, err
		}
		rss = r
	}
	return rss, nil
}
