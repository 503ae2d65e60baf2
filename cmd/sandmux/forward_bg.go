package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sandmux/sandmux/agent"
)

// A background forward (--background) is this binary re-executed
// detached (setsid) with the same arguments, less --background, plus
// --background-child. The child keeps a state file, forwards/PID.json in
// the agent directory, while its listeners are up, and logs to
// forwards/PID.log; `sandmux status` lists the state files whose process
// still runs. A clean exit (SIGTERM, SIGINT) removes both files; a crash
// leaves the log.

// forwardsSubdir holds background forwards' state and logs.
const forwardsSubdir = "forwards"

// forwardStartTimeout bounds how long --background waits for the child's
// listeners.
const forwardStartTimeout = 20 * time.Second

// forwardState is what a background forward records about itself.
type forwardState struct {
	PID       int                `json:"pid"`
	Host      string             `json:"host"`
	URL       string             `json:"url"`
	Forwards  []forwardStateLine `json:"forwards"`
	NoAgent   bool               `json:"no_agent,omitempty"`
	Started   time.Time          `json:"started"`
	Log       string             `json:"log"`
	stateFile string
}

type forwardStateLine struct {
	Listen string `json:"listen"`
	Target string `json:"target"`
}

// forwardStateFile is the child's own state file.
type forwardStateFile struct {
	path, log string
	logFile   *agent.LogFile
}

func forwardsDir(agentDir string) string { return filepath.Join(agentDir, forwardsSubdir) }

// forwardChildSetup opens the child's capped log (which becomes its error
// writer) and names its state file.
func forwardChildSetup(c *cli.Context) (*forwardStateFile, io.Writer, error) {
	dir, err := agentDir(c)
	if err != nil {
		return nil, nil, err
	}
	fdir := forwardsDir(dir)
	pid := strconv.Itoa(os.Getpid())
	st := &forwardStateFile{path: filepath.Join(fdir, pid+".json"), log: filepath.Join(fdir, pid+".log")}
	lf, err := agent.OpenLogFile(st.log, 1<<20)
	if err != nil {
		return nil, nil, err
	}
	st.logFile = lf
	return st, lf, nil
}

// write records the listeners, atomically.
func (s *forwardStateFile) write(host, url string, specs []forwardSpec, noAgent bool) error {
	st := forwardState{PID: os.Getpid(), Host: host, URL: url, NoAgent: noAgent, Started: time.Now().UTC(), Log: s.log}
	for _, sp := range specs {
		st.Forwards = append(st.Forwards, forwardStateLine{Listen: sp.Listen, Target: sp.Target})
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := writeNew(tmp, b); err != nil {
		return err
	}
	return os.Rename(tmp, s.path)
}

// writeNew writes b to a file made anew at path: a symbolic link put in
// its place (another user who can write to the directory) is removed,
// not followed, as O_EXCL never follows one. The agent's log and lock
// files are opened the same way (agent's noFollow).
func writeNew(path string, b []byte) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// remove deletes the state file and the log after a clean exit.
func (s *forwardStateFile) remove() {
	_ = os.Remove(s.path)
	_ = s.logFile.Close()
	_ = os.Remove(s.log)
	_ = os.Remove(s.log + ".1")
}

// listForwards returns the running background forwards in agentDir and
// removes the state files of those that are gone.
func listForwards(agentDir string) []forwardState {
	fdir := forwardsDir(agentDir)
	paths, _ := filepath.Glob(filepath.Join(fdir, "*.json"))
	var out []forwardState
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var st forwardState
		if json.Unmarshal(b, &st) != nil || !forwardAlive(st.PID) {
			_ = os.Remove(p)
			continue
		}
		st.stateFile = p
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

// printForwards renders background forwards for `sandmux status`.
func printForwards(w io.Writer, fs []forwardState) error {
	if len(fs) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nbackground forwards (stop one with `kill PID`):\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PID\tLISTEN\tTARGET\tHOST\tUP\tLOG")
	for _, f := range fs {
		for _, l := range f.Forwards {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", f.PID, l.Listen, l.Target, f.Host, time.Since(f.Started).Round(time.Second), f.Log)
		}
	}
	return tw.Flush()
}

// backgroundArgs is args (without the program name) less --background,
// plus --background-child.
func backgroundArgs(args []string) []string {
	out := []string{}
	for i, a := range args {
		if a == "--" {
			out = append(out, args[i:]...)
			break
		}
		if a == "--background" || a == "-background" || strings.HasPrefix(a, "--background=") || strings.HasPrefix(a, "-background=") {
			continue
		}
		out = append(out, a)
	}
	// After the subcommand name, so urfave parses it as a forward flag.
	for i, a := range out {
		if a == "forward" {
			return append(append(append([]string{}, out[:i+1]...), "--background-child"), out[i+1:]...)
		}
	}
	return out
}

// startForwardBackground re-executes this forward detached and returns
// once its listeners are up (or it failed), printing its pid on stdout.
func startForwardBackground(c *cli.Context, host string) error {
	if !agentSupported {
		return errors.New("--background is not supported on Windows; run `sandmux forward` in a window of its own")
	}
	dir, err := agentDir(c)
	if err != nil {
		return err
	}
	if err := agent.EnsureDir(dir); err != nil {
		return err
	}
	fdir := forwardsDir(dir)
	if err := os.MkdirAll(fdir, 0o700); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	tmpLog, err := os.CreateTemp(fdir, "starting-*.log")
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, backgroundArgs(os.Args[1:])...)
	// Unlike the agent's, this command line and environment are the
	// user's own: the child needs the same credentials to open streams.
	cmd.Env = os.Environ()
	cmd.Stdout, cmd.Stderr = tmpLog, tmpLog
	detach(cmd)
	// The child outlives this process: it must not hold what this one
	// inherited (a caller's lock or pipe) for as long as it runs.
	agent.CloseOnExecFrom(3)
	err = cmd.Start()
	_ = tmpLog.Close()
	if err != nil {
		_ = os.Remove(tmpLog.Name())
		return fmt.Errorf("start the background forward: %w", err)
	}
	pid := cmd.Process.Pid
	logPath := filepath.Join(fdir, strconv.Itoa(pid)+".log")
	if err := os.Rename(tmpLog.Name(), logPath); err != nil {
		logPath = tmpLog.Name()
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	statePath := filepath.Join(fdir, strconv.Itoa(pid)+".json")
	deadline := time.NewTimer(forwardStartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(statePath); err == nil {
			var st forwardState
			if err := json.Unmarshal(b, &st); err == nil {
				for _, l := range st.Forwards {
					fmt.Fprintf(c.App.ErrWriter, "sandmux: forwarding %s -> %s in %s\n", l.Listen, l.Target, host)
				}
				fmt.Fprintf(c.App.ErrWriter, "sandmux: forward running in the background (pid %d, log %s); `sandmux status` lists it, `kill %d` stops it\n", pid, logPath, pid)
				_, err := fmt.Fprintln(c.App.Writer, pid)
				return err
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			_ = os.Remove(logPath)
			msg := strings.TrimSpace(string(bytes.TrimPrefix(lastLine(b), []byte("sandmux: "))))
			if msg == "" {
				msg = "it exited without a word"
			}
			return fmt.Errorf("the background forward did not start: %s", msg)
		case <-deadline.C:
			return fmt.Errorf("the background forward (pid %d) did not report its listeners within %s (see %s)", pid, forwardStartTimeout, logPath)
		case <-tick.C:
		}
	}
}

// lastLine returns b's last non-empty line.
func lastLine(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return lines[len(lines)-1]
}
