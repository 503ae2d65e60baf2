//go:build !windows

package main

import (
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
)

// A forward or proxy started under nohup keeps ignoring hang-ups (ssh
// under nohup goes on after its terminal closes): terminateSignals
// must not hand SIGHUP to signal.Notify, which would undo the SIG_IGN.
func TestTerminateSignalsKeepNohup(t *testing.T) {
	if os.Getenv("SANDMUX_NOHUP_CHILD") == "1" {
		if slices.Contains(terminateSignals, os.Signal(syscall.SIGHUP)) {
			os.Exit(3)
		}
		os.Exit(0)
	}
	if !slices.Contains(terminateSignals, os.Signal(syscall.SIGHUP)) {
		t.Fatal("SIGHUP missing from terminateSignals in a process that does not ignore it")
	}
	cmd := exec.Command("nohup", os.Args[0], "-test.run=^TestTerminateSignalsKeepNohup$")
	cmd.Env = append(os.Environ(), "SANDMUX_NOHUP_CHILD=1")
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Run(); err != nil {
		if _, lookErr := exec.LookPath("nohup"); lookErr != nil {
			t.Skip("no nohup")
		}
		t.Fatalf("under nohup, terminateSignals still holds SIGHUP (or the child failed): %v", err)
	}
}
