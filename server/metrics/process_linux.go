package metrics

import (
	"bufio"
	"bytes"
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
)

// userHZ is the unit of the clock-tick fields of /proc/self/stat. The
// kernel fixes it at 100 for user space on every architecture Go runs on
// Linux (and Go cannot ask sysconf without cgo); procfs, which
// client_golang reads these through, assumes the same.
const userHZ = 100

var (
	errBadStat = errors.New("malformed /proc/self/stat")
	errNoBtime = errors.New("no btime in /proc/stat")
)

// writeProcess adds the process_ families of client_golang's process
// collector, read from /proc/self, each left out if its file cannot be
// read or parsed: a scrape with a metric missing beats no scrape. The
// network ones are left out: /proc/self/net/netstat counts the whole
// network namespace, not this process.
func writeProcess(e *exposition) {
	if st, err := readStat(); err == nil {
		e.family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", typeCounter).
			add("", float64(st.utime+st.stime)/userHZ)
		e.family("process_virtual_memory_bytes", "Virtual memory size in bytes.", typeGauge).
			add("", float64(st.vsize))
		e.family("process_resident_memory_bytes", "Resident memory size in bytes.", typeGauge).
			add("", float64(st.rss*uint64(os.Getpagesize())))
		if boot, err := bootTime(); err == nil {
			e.family("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", typeGauge).
				add("", float64(boot)+float64(st.starttime)/userHZ)
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

// procStat holds the fields of /proc/self/stat the metrics need.
type procStat struct {
	utime, stime, starttime uint64 // clock ticks (userHZ)
	vsize                   uint64 // bytes
	rss                     uint64 // pages
}

// readStat reads /proc/self/stat (proc(5)).
func readStat() (procStat, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// parseStat parses the contents of a /proc/[pid]/stat. The command name,
// field 2, is in parentheses and may hold spaces and parentheses itself,
// so the fields are counted from its last ')': field 3, the state, is
// the first after it.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errBadStat
	}
	f := strings.Fields(string(b[i+1:]))
	var err error
	field := func(n int) uint64 { // n as numbered in proc(5)
		if n-3 >= len(f) {
			err = errBadStat
			return 0
		}
		v, perr := strconv.ParseUint(f[n-3], 10, 64)
		if perr != nil {
			err = errBadStat
		}
		return v
	}
	st := procStat{utime: field(14), stime: field(15), starttime: field(22), vsize: field(23), rss: field(24)}
	return st, err
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
