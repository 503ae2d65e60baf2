//go:build !windows

package main

import (
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"syscall"
	"testing"
)

// A forward or proxy started under nohup keeps ignoring hang-ups (ssh
// under nohup goes on after its terminal closes): terminateSignals
// must not hand SIGHUP to signal.Notify, which would undo the SIG_IGN.
// One that does not ignore them stops on one.
func TestTerminateSignalsKeepNohup(t *testing.T) {
	switch os.Getenv("SANDMUX_NOHUP_CHILD") {
	case "default":
		if !slices.Contains(terminateSignals, os.Signal(syscall.SIGHUP)) {
			os.Exit(3)
		}
		os.Exit(0)
	case "ignored":
		if slices.Contains(terminateSignals, os.Signal(syscall.SIGHUP)) {
			os.Exit(3)
		}
		os.Exit(0)
	}
	// Both cases run in a child, since this process may itself ignore
	// SIGHUP (`nohup make test`), which its own terminateSignals, and a
	// child that inherited it, would rightly follow. While this process
	// takes SIGHUP itself, a child starts with the default (as in e2e's
	// TestMain); signal.Reset gives back what it had.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	defer signal.Reset(syscall.SIGHUP)
	child := func(mode string, argv ...string) error {
		cmd := exec.Command(argv[0], append(argv[1:], "-test.run=^TestTerminateSignalsKeepNohup$")...)
		cmd.Env = append(os.Environ(), "SANDMUX_NOHUP_CHILD="+mode)
		cmd.Stdout, cmd.Stderr = nil, nil
		return cmd.Run()
	}
	if err := child("default", os.Args[0]); err != nil {
		t.Fatalf("in a process that does not ignore SIGHUP, terminateSignals lacks it (or the child failed): %v", err)
	}
	if err := child("ignored", "nohup", os.Args[0]); err != nil {
		if _, lookErr := exec.LookPath("nohup"); lookErr != nil {
			t.Skip("no nohup")
		}
		t.Fatalf("under nohup, terminateSignals still holds SIGHUP (or the child failed): %v", err)
	}
}
