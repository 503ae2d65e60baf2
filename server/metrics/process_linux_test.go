package metrics

import (
	"math"
	"testing"
)

// TestParseStat: fields are counted from the command name's last ')',
// so a name with spaces and parentheses does not shift them.
func TestParseStat(t *testing.T) {
	// proc(5) fields 1..24 and a few more; comm is "a) (b c".
	const stat = "4242 (a) (b c) S 1 4242 4242 0 -1 4194560 100 0 0 0 " +
		"250 75 0 0 20 0 9 0 123456 1600000000 2048 18446744073709551615 1 1 0 0 0 0\n"
	st, err := parseStat([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	want := procStat{utime: 250, stime: 75, starttime: 123456, vsize: 1600000000, rss: 2048}
	if st != want {
		t.Errorf("parseStat = %+v, want %+v", st, want)
	}
	for _, bad := range []string{"", "4242 (x S 1", "4242 (x) S 1 2 3", "4242 (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 a b 0 0 20 0 9 0 1 2 3"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}

// TestSoftLimit reads the soft column, "unlimited" as procfs reports it.
func TestSoftLimit(t *testing.T) {
	const limits = `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max open files            1024                 1048576              files     
Max address space         unlimited            unlimited            bytes     
`
	if v, ok := softLimit([]byte(limits), "Max open files"); !ok || v != 1024 {
		t.Errorf("Max open files = %v, %v", v, ok)
	}
	if v, ok := softLimit([]byte(limits), "Max address space"); !ok || v != math.MaxUint64 {
		t.Errorf("Max address space = %v, %v", v, ok)
	}
	if _, ok := softLimit([]byte(limits), "Max processes"); ok {
		t.Error("found a limit that is not there")
	}
}
