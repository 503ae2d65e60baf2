package agent

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The process Spawn's starter leaves running is not the caller's child,
// so a long-lived caller (forward) collects no zombie when it ends.
func TestSpawnLeavesNoChild(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	err := Spawn("/bin/sh", []string{"-c", `sleep 60 </dev/null >/dev/null 2>&1 & echo $! > "$0"`, pidFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(pid, syscall.SIGKILL) }()
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command's closing parenthesis: state, ppid, ...
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if ppid, _ := strconv.Atoi(fields[1]); ppid == os.Getpid() {
		t.Errorf("the started process is still this process's child (ppid %d)", ppid)
	}

	err = Spawn("/bin/sh", []string{"-c", "echo 'agent dir not writable' >&2; exit 3"}, nil)
	if err == nil || err.Error() != "exit status 3: agent dir not writable" {
		t.Errorf("failing starter: %v", err)
	}
}
