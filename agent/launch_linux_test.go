package agent

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
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
	if err == nil || err.Error() != "agent dir not writable" {
		t.Errorf("failing starter: %v", err)
	}
}

// A detached agent starts in / and without the descriptors its starter
// inherited (a script's lock, a pipe its caller reads to the end), which
// it would otherwise hold busy for as long as it lives; and a failure
// before it listens (its log cannot be opened) comes back as the start's
// error at once, not as a proxy's 10 s wait for an agent that never came.
func TestStartDetachedLetsGo(t *testing.T) {
	dir := t.TempDir()
	leak, err := os.Create(filepath.Join(dir, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer leak.Close()
	if _, err := fcntlClearCloexec(leak.Fd()); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	out := filepath.Join(dir, "out")
	// The shell reports its working directory and whether the descriptor
	// is open in it, then exits: its stderr's end is the start's success.
	script := `{ pwd; [ -e /proc/$$/fd/"$1" ] && echo open || echo closed; } > "$0.tmp" && mv "$0.tmp" "$0"`
	if err := StartDetached("/bin/sh", []string{"-c", script, out, strconv.Itoa(int(leak.Fd()))}, nil); err != nil {
		t.Fatal(err)
	}
	var b []byte
	if !testutil.Poll(10*time.Second, func() bool { b, err = os.ReadFile(out); return err == nil }) {
		t.Fatal("the detached process wrote nothing")
	}
	if got := string(b); got != "/\nclosed\n" {
		t.Errorf("detached process: %q, want working directory / and the inherited descriptor closed", got)
	}
	err = StartDetached("/bin/sh", []string{"-c", "echo 'sandmux: open log: is a directory' >&2; exit 1"}, nil)
	if err == nil || err.Error() != "open log: is a directory" {
		t.Errorf("failing start: %v", err)
	}
}

// fcntlClearCloexec makes fd survive exec, as a descriptor a shell script
// opened does.
func fcntlClearCloexec(fd uintptr) (uintptr, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETFD, 0)
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}
