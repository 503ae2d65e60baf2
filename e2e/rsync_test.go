//go:build linux

package e2e

// rsync over ssh through the tunnel, as users run it: `rsync -e ssh`.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/sshtest"
)

// TestRsyncPartialResumes: an `rsync --partial` upload cut by Ctrl-C
// keeps what arrived, and the next run sends only the rest, byte-exact,
// through sshd (via the agent) and through the embedded server (with
// --no-agent). The embedded server used to send the remote rsync SIGHUP
// while still holding its output pipe open: rsync, which answers SIGHUP
// by telling the client, blocked on the full pipe until SIGKILL and left
// its temporary file, so the next run sent everything again.
func TestRsyncPartialResumes(t *testing.T) {
	t.Parallel()
	t.Run("sshd", func(t *testing.T) {
		t.Parallel()
		sshd := startSSHD(t, "rsync")
		srv := startServer(t, serverOpts{Target: sshd.Addr})
		rsyncPartial(t, sshd, proxyCommand(srv.URL, newAgentDir(t)), sshd.Dir)
	})
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		sshtest.Require(t, "rsync")
		e := startEmbedded(t, embeddedOpts{})
		rsyncPartial(t, e.sshClient, e.proxy(), e.Dir)
	})
}

// rsyncPartial uploads a file with rsync --partial, interrupts it as
// Ctrl-C does (SIGINT to rsync, its ssh and the proxy), then runs it
// again and checks that the second run reused the partial file.
func rsyncPartial(t *testing.T, c commander, proxy, scratch string) {
	ctx := testContext(t, 3*time.Minute)
	local := t.TempDir()
	src := filepath.Join(local, "big.bin")
	want := sshtest.RandomFile(t, src, 32<<20)
	remoteDir := filepath.Join(scratch, "rsync-dst")
	if err := os.Mkdir(remoteDir, 0o700); err != nil {
		t.Fatal(err)
	}
	remote := filepath.Join(remoteDir, "big.bin")
	sshWrapper := rsyncSSH(ctx, t, c, proxy, local)

	// 4 MiB/s, so that the cut comes well before the end.
	first := exec.CommandContext(ctx, "rsync", "--partial", "--bwlimit=4096", "-e", sshWrapper, src, "sandbox:"+remote)
	first.Env = childEnv()
	first.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var firstErr strings.Builder
	first.Stderr = &firstErr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- first.Wait() }()
	waitFor(t, time.Minute, "the upload's first MiBs to arrive", func() (bool, string) {
		if len(done) > 0 {
			return true, "rsync ended"
		}
		n := dirBytes(remoteDir)
		return n >= 2<<20, fmt.Sprintf("%d bytes", n)
	})
	_ = syscall.Kill(-first.Process.Pid, syscall.SIGINT)
	if err := <-done; err == nil {
		t.Fatalf("the first rsync finished before it was interrupted; nothing tested\n%s", firstErr.String())
	}
	// rsync --partial moves what it received into place as it ends.
	waitFor(t, 30*time.Second, "the remote rsync to keep the partial file", func() (bool, string) {
		fi, err := os.Stat(remote)
		if err != nil {
			return false, fmt.Sprintf("%v; the directory holds %q", err, dirNames(remoteDir))
		}
		return fi.Size() > 0, fmt.Sprintf("%d bytes", fi.Size())
	})

	second := exec.CommandContext(ctx, "rsync", "--partial", "--stats", "-e", sshWrapper, src, "sandbox:"+remote)
	second.Env = childEnv()
	r := run(second, "")
	if r.err != nil {
		t.Fatalf("second rsync: %s", r)
	}
	m := regexp.MustCompile(`Matched data: ([\d,]+) bytes`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("second rsync printed no \"Matched data\":\n%s", r.stdout)
	}
	if matched, _ := strconv.Atoi(strings.ReplaceAll(m[1], ",", "")); matched == 0 {
		t.Errorf("second rsync matched nothing: the partial file was not reused\n%s", r.stdout)
	}
	if got := sshtest.FileSHA256(t, remote); got != want {
		t.Fatalf("remote file sha256 %s, want %s", got, want)
	}
}

// rsyncSSH writes a script that runs ssh as c would, through proxy, for
// rsync's -e, and returns its path: -e takes one string, which the
// ProxyCommand's spaces would break up.
func rsyncSSH(ctx context.Context, t *testing.T, c commander, proxy, dir string) string {
	t.Helper()
	args := c.Command(ctx, t, "ssh", proxy).Args
	var b strings.Builder
	b.WriteString("#!/bin/sh\nexec")
	for _, a := range args {
		b.WriteString(" '" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	b.WriteString(" \"$@\"\n")
	path := filepath.Join(dir, "ssh.sh")
	if err := os.WriteFile(path, []byte(b.String()), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

// dirBytes is the size of the files in dir, 0 if it cannot be read.
func dirBytes(dir string) int64 {
	var n int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func dirNames(dir string) []string {
	ents, _ := os.ReadDir(dir)
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
