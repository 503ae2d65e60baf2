// Package procstat reads the fields of a process's /proc/PID/stat
// (proc(5)) that sandmux uses: the server's process metrics, the CLI's
// and the tests' checks that a process is gone, and the bench's CPU
// figures. It exists on Linux only; elsewhere Read fails, since the file
// does not exist.
package procstat

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"
)

// UserHZ is the unit of the clock-tick fields. The kernel fixes it at 100
// for user space on every architecture Go runs on Linux (and Go cannot ask
// sysconf without cgo); procfs and client_golang assume the same.
const UserHZ = 100

// ErrMalformed means a stat file could not be parsed.
var ErrMalformed = errors.New("malformed /proc stat file")

// Stat holds the fields of /proc/PID/stat that sandmux reads, named and
// numbered as in proc(5).
type Stat struct {
	State        byte   // 3: R, S, D, ..., Z (zombie), X (dead)
	PPID         int    // 4
	UTime, STime uint64 // 14, 15: clock ticks (UserHZ)
	StartTime    uint64 // 22: clock ticks after boot
	VSize        uint64 // 23: bytes
	RSS          uint64 // 24: pages
}

// CPU is the user and system CPU time of every thread so far.
func (s Stat) CPU() time.Duration {
	return time.Duration(s.UTime+s.STime) * time.Second / UserHZ
}

// Exited reports whether the process has ended and waits to be reaped
// (or is being torn down): it answers signal 0 but will never run again.
func (s Stat) Exited() bool { return s.State == 'Z' || s.State == 'X' }

// Read reads process pid's stat; pid 0 is this process.
func Read(pid int) (Stat, error) {
	path := "/proc/self/stat"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Stat{}, err
	}
	return Parse(b)
}

// Parse parses the contents of a stat file. The command name, field 2, is
// in parentheses and may hold spaces and parentheses itself, so fields
// are counted from its last ')': field 3, the state, is the first after it.
func Parse(b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, ErrMalformed
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 24-2 || len(f[0]) != 1 {
		return Stat{}, ErrMalformed
	}
	var err error
	field := func(n int) uint64 { // n as numbered in proc(5)
		v, perr := strconv.ParseUint(f[n-3], 10, 64)
		if perr != nil {
			err = ErrMalformed
		}
		return v
	}
	st := Stat{
		State: f[0][0], PPID: int(field(4)),
		UTime: field(14), STime: field(15), StartTime: field(22), VSize: field(23), RSS: field(24),
	}
	return st, err
}
