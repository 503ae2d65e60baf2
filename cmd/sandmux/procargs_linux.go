package main

import (
	"os"
	"strings"
)

// processArgs is pid's command line.
func processArgs(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/cmdline")
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"), nil
}
