//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// echoChildArg, as the first argument, makes the bench binary (or its
// test binary, see TestMain) scenario 5's echo client: a process of its
// own, as ssh is beside scp. In the bench's process the echo shared Go's
// scheduler with the bulk streams' writers and readers, and its reply
// waited for the bench's own goroutines on every peer alike (raw TCP's
// p99 6-9 ms on 2 cores), which said more of the harness than of a
// tunnel.
const echoChildArg = "-bench-echo-client"

// echoJob is what the echo client is to do, passed as JSON.
type echoJob struct {
	Addr    string        // dial this (raw TCP), or
	Cmd     []string      // run this with its stdio as the connection
	Samples int           // round trips to time
	Gap     time.Duration // pause after each
	Settle  time.Duration // wait before the first, for the load to peak
}

// echoReport is the echo client's answer on its stdout, after a line
// "start" written when the first sample is taken.
type echoReport struct {
	RTTs []float64 // ms
}

// runEchoChild runs an echo client process for job, calls started when
// it begins timing, and returns its round trips in ms. ctx ends it.
func runEchoChild(ctx context.Context, job echoJob, env []string, started func()) ([]float64, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	arg, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, echoChildArg, string(arg))
	cmd.Env = env
	var stderr tailBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	rep, rerr := readEchoReport(out, started)
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("echo client: %w: %s", err, stderr.String())
	}
	if rerr != nil {
		return nil, fmt.Errorf("echo client: %w", rerr)
	}
	return rep.RTTs, nil
}

func readEchoReport(r io.Reader, started func()) (echoReport, error) {
	var rep echoReport
	br := bufio.NewReader(r)
	line, err := br.ReadString('\n')
	if err != nil {
		return rep, err
	}
	if strings.TrimSpace(line) != "start" {
		return rep, fmt.Errorf("said %q, not start", line)
	}
	started()
	err = json.NewDecoder(br).Decode(&rep)
	return rep, err
}

// echoChildMain is the echo client's main: args[0] is its echoJob.
func echoChildMain(args []string) int {
	if err := echoChild(args); err != nil {
		fmt.Fprintf(os.Stderr, "bench echo client: %v\n", err)
		return 1
	}
	return 0
}

func echoChild(args []string) error {
	if len(args) != 1 {
		return errors.New("want one argument, the job")
	}
	var job echoJob
	if err := json.Unmarshal([]byte(args[0]), &job); err != nil {
		return err
	}
	var c conn
	var err error
	if job.Addr != "" {
		c, err = dialTCP(job.Addr)
	} else {
		c, err = startProc(job.Cmd[0], job.Cmd[1:], os.Environ())
	}
	if err != nil {
		return err
	}
	defer func() { _ = finish(c) }()
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
	if err := request(c, modeEcho, 0); err != nil {
		return fmt.Errorf("echo stream: %w", err)
	}
	msg, got := make([]byte, 64), make([]byte, 64)
	for i := range msg {
		msg[i] = byte(i)
	}
	time.Sleep(job.Settle) // let the bulk streams reach full speed
	if _, err := os.Stdout.WriteString("start\n"); err != nil {
		return err
	}
	rep := echoReport{RTTs: make([]float64, 0, job.Samples)}
	for range job.Samples {
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, got); err != nil {
			return err
		}
		rep.RTTs = append(rep.RTTs, ms(time.Since(start)))
		time.Sleep(job.Gap)
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}
