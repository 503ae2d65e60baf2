//go:build linux

// Command bench measures sandmux beside raw TCP, direct ssh and the
// one-WebSocket-per-connection model, in one run, on 127.0.0.1. It builds
// the sandmux binary itself, prints a markdown table to stdout (progress
// goes to stderr) and writes the same as JSON to bench/out/latest.json.
//
//	make bench                 # full run, under 10 minutes on 2 cores
//	BENCH_QUICK=1 make bench   # about a minute, smaller sizes
//
// Environment (read here only):
//
//	BENCH_QUICK=1      quick sizes
//	BENCH_ONLY=1,3     run only these scenarios (1 bulk, 2 parallel, 3 scp,
//	                   4 setup, 5 latency under load, 6 memory, 7 CPU/GiB,
//	                   8 resume cost, 9 request/response)
//	BENCH_OUT=FILE     JSON output (default bench/out/latest.json)
//	BENCH_BIN=FILE     use this sandmux binary instead of building one
//	BENCH_PROFILE=DIR  also CPU-profile an in-process equivalent of scenario
//	                   1's loopback transfers into DIR (see profile.go)
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// gigabit is the link of scenario 1's rate-limited rows, in bytes per
// second: a fast office or home line to a cloud region.
const gigabit = 125_000_000

func fullSettings() Settings {
	return Settings{
		BulkSize: 1 * gib, Reps: 2, // interleaved, median: one run on a shared machine swings 10-30 %
		ParStreams: 8, ParSize: 128 * mib,
		ScpSize: 512 * mib, ScpReps: 1, ScpLoopReps: 3,
		SetupRuns:   20,
		EchoSamples: 1000, EchoGap: 5 * time.Millisecond, LoadStreams: 4,
		IdleStreams: 1000, ProxyStreams: 100, IdleSessions: 200,
		OneWayDelay: 25 * time.Millisecond,
		LinkRate:    gigabit, LinkBulkSize: 256 * mib,
		Cuts: 3, SCPExtras: true,
		CostSize: 256 * mib, CostReps: 3,
		RRSize: 512 * mib, RRReps: 3,
	}
}

// quickSettings aim at about a minute (the figure): one sample
// of each figure, and scp with the peers only. scp through sshd
// is most of it whatever the size: each run pays ssh's login, at 50 ms
// its window's growth, and an upload OpenSSH's own start-up (an upload
// of 8 MiB takes 1.5 to 2 s here even on loopback, direct or not, and
// one of 128 MiB hardly longer: ssh waits on sshd's channel window while
// sshd re-allocates its pending data; see README, Performance).
func quickSettings() Settings {
	return Settings{
		BulkSize: 64 * mib, Reps: 1,
		ParStreams: 8, ParSize: 8 * mib,
		ScpSize: 8 * mib, ScpReps: 1, ScpLoopReps: 1,
		SetupRuns:   2,
		EchoSamples: 100, EchoGap: 5 * time.Millisecond, LoadStreams: 4,
		IdleStreams: 200, ProxyStreams: 20, IdleSessions: 25,
		OneWayDelay: 25 * time.Millisecond,
		LinkRate:    gigabit, LinkBulkSize: 32 * mib,
		CostSize: 16 * mib, CostReps: 1,
		RRSize: 32 * mib, RRReps: 1,
	}
}

// tinySettings only prove the harness works (bench_test.go).
func tinySettings() Settings {
	return Settings{
		BulkSize: 4 * mib, Reps: 2,
		ParStreams: 4, ParSize: 1 * mib,
		ScpSize: 2 * mib, ScpReps: 1, ScpLoopReps: 2,
		SetupRuns:   2,
		EchoSamples: 40, EchoGap: time.Millisecond, LoadStreams: 2,
		IdleStreams: 20, ProxyStreams: 4, IdleSessions: 3,
		OneWayDelay: 5 * time.Millisecond,
		LinkRate:    gigabit, LinkBulkSize: 2 * mib,
		Cuts: 2, SCPExtras: true,
		CostSize: 4 * mib, CostReps: 2,
		RRSize: 2 * mib, RRReps: 2,
	}
}

func main() {
	if err := mainErr(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func mainErr() error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	o := Options{Mode: "full", Settings: fullSettings(), Root: root, Progress: os.Stderr}
	if on(os.Getenv("BENCH_QUICK")) {
		o.Mode, o.Settings = "quick", quickSettings()
	}
	if s := os.Getenv("BENCH_ONLY"); s != "" {
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
			id, err := strconv.Atoi(f)
			if err != nil || id < 1 || id > len(scenarios) {
				return fmt.Errorf("BENCH_ONLY=%q: %q is not a scenario number 1-%d", s, f, len(scenarios))
			}
			o.Settings.Only = append(o.Settings.Only, id)
		}
	}
	o.Bin = os.Getenv("BENCH_BIN")
	o.Profile = os.Getenv("BENCH_PROFILE")
	out := os.Getenv("BENCH_OUT")
	if out == "" {
		out = filepath.Join(root, "bench", "out", "latest.json")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, o)
	if err != nil {
		return err
	}
	rep.Markdown(os.Stdout)
	if err := rep.WriteJSON(out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s\n", out)
	if o.Profile != "" {
		if err := profileInProcess(ctx, o); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
	}
	return ctx.Err()
}

func on(s string) bool {
	switch strings.ToLower(s) {
	case "", "0", "false", "no", "off":
		return false
	}
	return true
}
