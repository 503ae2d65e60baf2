package metrics

import (
	"bufio"
	"errors"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/sandmux/sandmux/internal/procstat"
)

var errNoBtime = errors.New("no btime in /proc/stat")

// writeProcess adds the process_ families of client_golang's process
// collector, read from /proc/self, each left out if its file cannot be
// read or parsed: a scrape with a metric missing beats no scrape. The
// network ones are left out: /proc/self/net/netstat counts the whole
// network namespace, not this process.
func writeProcess(e *exposition) {
	if st, err := procstat.Read(0); err == nil {
		e.family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", typeCounter).
			add("", st.CPU().Seconds())
		e.family("process_virtual_memory_bytes", "Virtual memory size in bytes.", typeGauge).
			add("", float64(st.VSize))
		e.family("process_resident_memory_bytes", "Resident memory size in bytes.", typeGauge).
			add("", float64(st.RSS*uint64(os.Getpagesize())))
		if boot, err := bootTime(); err == nil {
			e.family("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", typeGauge).
				add("", float64(boot)+float64(st.StartTime)/procstat.UserHZ)
		}
	}
	if n, err := openFDs(); err == nil {
		e.family("process_open_fds", "Number of open file descriptors.", typeGauge).
			add("", float64(n))
	}
	if lim, err := os.ReadFile("/proc/self/limits"); err == nil {
		if v, ok := softLimit(lim, "Max open files"); ok {
			e.family("process_max_fds", "Maximum number of open file descriptors.", typeGauge).
				add("", v)
		}
		if v, ok := softLimit(lim, "Max address space"); ok {
			e.family("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", typeGauge).
				add("", v)
		}
	}
}

// bootTime returns the system's boot time in seconds since the epoch,
// the btime line of /proc/stat, which process start times count from.
func bootTime() (uint64, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20) // a line per CPU, and the intr line can be long
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "btime "); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errNoBtime
}

// openFDs counts the entries of /proc/self/fd. The count includes the
// descriptor reading the directory, as client_golang's does.
func openFDs() (int, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	return len(names), err
}

// softLimit returns the soft limit of the line of /proc/self/limits whose
// name is name, "unlimited" as the largest uint64, as procfs reports it.
func softLimit(limits []byte, name string) (float64, bool) {
	for line := range strings.Lines(string(limits)) {
		rest, ok := strings.CutPrefix(line, name)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		if f[0] == "unlimited" {
			return math.MaxUint64, true
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		return float64(v), err == nil
	}
	return 0, false
}
