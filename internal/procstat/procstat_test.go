package procstat

import (
	"os"
	"runtime"
	"testing"
)

// TestParse: fields are counted from the command name's last ')', so a
// name with spaces and parentheses does not shift them.
func TestParse(t *testing.T) {
	// proc(5) fields 1..24 and a few more; comm is "a) (b c".
	const stat = "4242 (a) (b c) Z 17 4242 4242 0 -1 4194560 100 0 0 0 " +
		"250 75 0 0 20 0 9 0 123456 1600000000 2048 18446744073709551615 1 1 0 0 0 0\n"
	st, err := Parse([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	want := Stat{State: 'Z', PPID: 17, UTime: 250, STime: 75, StartTime: 123456, VSize: 1600000000, RSS: 2048}
	if st != want {
		t.Errorf("Parse = %+v, want %+v", st, want)
	}
	if !st.Exited() || st.CPU().Seconds() != 3.25 {
		t.Errorf("Exited %v, CPU %v; want true, 3.25s", st.Exited(), st.CPU())
	}
	for _, bad := range []string{"", "4242 (x S 1", "4242 (x) S 1 2 3",
		"4242 (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 a b 0 0 20 0 9 0 1 2 3",
		"4242 (x) SS 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 9 0 1 2 3"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

// TestReadSelf reads this process, by 0 and by its pid.
func TestReadSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/PID/stat exists on Linux only")
	}
	for _, pid := range []int{0, os.Getpid()} {
		st, err := Read(pid)
		if err != nil {
			t.Fatalf("Read(%d): %v", pid, err)
		}
		if st.PPID != os.Getppid() || st.Exited() || st.RSS == 0 {
			t.Errorf("Read(%d) = %+v; want parent %d, running, resident", pid, st, os.Getppid())
		}
	}
}
