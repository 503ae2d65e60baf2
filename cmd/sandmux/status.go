package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sandmux/sandmux/agent"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the agent's shared sessions",
		Flags: []cli.Flag{agentDirFlag(), &cli.BoolFlag{Name: "json", Usage: "machine-readable output"}},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			dir, err := agentDir(c)
			if err != nil {
				return err
			}
			if err := notADirectory(dir); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := agent.GetStatus(ctx, dir)
			forwards := listForwards(dir)
			stopping := errors.Is(err, agent.ErrStopping)
			if errors.Is(err, agent.ErrNotRunning) || stopping {
				if c.Bool("json") {
					enc := json.NewEncoder(c.App.Writer)
					return enc.Encode(struct {
						Running  bool           `json:"running"`
						Stopping bool           `json:"stopping,omitempty"`
						Sessions []struct{}     `json:"sessions"`
						Forwards []forwardState `json:"forwards,omitempty"`
					}{false, stopping, []struct{}{}, forwards})
				}
				msg := "no agent running (the first `sandmux proxy` starts one)"
				if stopping {
					// Its sessions' ssh are still open: "no agent"
					// would send a user looking for them elsewhere.
					msg = "the agent is stopping: it is closing its sessions and answers no more (`" + agentStopCommand(c, dir) + "` waits for it; the next `sandmux proxy` starts a new one)"
				} else if !agentSupported {
					// No proxy ever starts one here: "the first starts
					// one" would have a user wait for it.
					msg = "no agent: there is no shared agent on Windows; every `sandmux proxy` and `sandmux forward` opens a session of its own"
				} else if other := otherAgent(c, dir); other != "" {
					msg = fmt.Sprintf("no agent running in %s, but one runs in %s, started by a shell with another XDG_RUNTIME_DIR or HOME: `sandmux status --agent-dir %s`", dir, other, other)
				}
				if _, err := fmt.Fprintln(c.App.Writer, msg); err != nil {
					return err
				}
				return printForwards(c.App.Writer, forwards)
			}
			if err != nil {
				return err
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Running bool `json:"running"`
					agent.Status
					Forwards []forwardState `json:"forwards,omitempty"`
				}{true, st, forwards})
			}
			if err := printStatus(c.App.Writer, st, agentStopCommand(c, dir)); err != nil {
				return err
			}
			return printForwards(c.App.Writer, forwards)
		},
	}
}

func printStatus(w io.Writer, st agent.Status, stop string) error {
	fmt.Fprintf(w, "agent pid %d, version %s, up %s, %s\n", st.PID, st.Version, time.Since(st.Started).Round(time.Second), plural(st.Streams, "open stream"))
	if note := agentVersionNote(st.Version, stop); note != "" {
		fmt.Fprintln(w, note)
	}
	if len(st.Sessions) == 0 {
		// A table head over nothing read as if the rows were missing.
		_, err := fmt.Fprintln(w, "no sessions (the next ssh through sandmux opens one)")
		return err
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "URL\tSTATE\tSINCE\tRECONNECTS\tRESUMES\tREPLAYED\tRTT\tSTREAMS\tIN\tOUT")
	// Why a session is not connected takes a line of its own under the
	// table: a reason with the last attempt's error in a cell widened
	// every row to some 300 columns.
	var reasons []string
	names := sessionNames(st.Sessions)
	for i, s := range st.Sessions {
		state := s.State
		if s.Reason != "" && s.State != agent.StateConnected {
			// A dial error names the URL already; the row's name says
			// which of the sessions to it this is.
			reasons = append(reasons, fmt.Sprintf("%s: %s: %s", names[i], s.State, strings.TrimPrefix(s.Reason, s.URL+": ")))
		}
		since, rtt := "-", rttText(s.LastRTT)
		switch {
		case !s.ResumingSince.IsZero():
			// The outage's age, and no round trip of a path that is gone.
			since, rtt = time.Since(s.ResumingSince).Round(time.Second).String(), "-"
		case !s.ConnectedSince.IsZero():
			since = time.Since(s.ConnectedSince).Round(time.Second).String()
		}
		resumes := "-"
		// An idle entry has no session, resumable or not, but keeps the
		// counts of those it had, as REPLAYED does.
		if s.Resumable || s.Resumes > 0 {
			resumes = fmt.Sprint(s.Resumes)
		}
		streams := fmt.Sprint(s.OpenStreams)
		if s.Waiting > 0 {
			// Proxies held up by a session that is not connected are
			// what a user looking at a hung ssh wants to see.
			streams += fmt.Sprintf(" (+%d waiting)", s.Waiting)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", names[i], state, since, s.Reconnects,
			resumes, bytesIEC(s.Replayed), rtt, streams, bytesIEC(s.BytesIn), bytesIEC(s.BytesOut))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(reasons) > 0 {
		fmt.Fprintln(w)
	}
	for _, r := range reasons {
		fmt.Fprintln(w, r)
	}
	return nil
}

// sessionNames names each session's row: its URL (and HTTP proxy), and
// where sessions to the same server differ in settings (a proxy's own
// --no-resume, token or headers), what sets each apart. Sessions that
// differ only in a value status never shows (two tokens, two CAs) are
// numbered, so that each row, and the reason line under the table, names
// one session.
func sessionNames(sessions []agent.SessionStatus) []string {
	names := make([]string, len(sessions))
	sameURL := map[string]int{}
	for i, s := range sessions {
		names[i] = s.URL
		if s.Proxy != "" {
			names[i] += " via " + s.Proxy
		}
		sameURL[names[i]]++
	}
	same := map[string]int{}
	for i, s := range sessions {
		if sameURL[names[i]] > 1 {
			opts := "defaults"
			if len(s.Options) > 0 {
				opts = strings.Join(s.Options, ", ")
			}
			names[i] += " (" + opts + ")"
		}
		same[names[i]]++
	}
	seen := map[string]int{}
	for i := range names {
		if same[names[i]] > 1 {
			seen[names[i]]++
			n := seen[names[i]]
			names[i] = strings.TrimSuffix(names[i], ")") + fmt.Sprintf(" #%d)", n)
		}
	}
	return names
}

// rttText renders a round trip to a hundredth of its unit (2.76s,
// 51.23ms, 183.46µs), or "-" before the first ping has returned.
func rttText(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	for _, u := range []time.Duration{time.Second, time.Millisecond, time.Microsecond} {
		if d >= u {
			return d.Round(u / 100).String()
		}
	}
	return d.String()
}

// bytesIEC renders n as B, KiB, MiB or GiB.
func bytesIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGT"[exp])
}

// agentVersionNote says, when the running agent is another version than
// this binary (sandmux was upgraded while its agent ran), that the agent
// goes on running its own binary, whose limits and fixes still apply to
// every ssh, and how to move to this one (stop, agentStopCommand); ""
// when they match.
func agentVersionNote(agentVersion, stop string) string {
	if agentVersion == "" || agentVersion == version {
		return ""
	}
	return fmt.Sprintf("this sandmux is version %s, the agent version %s, which it keeps until it exits: `%s` (which ends its open streams) lets the next ssh start one of this version", version, agentVersion, stop)
}

// plural is n and noun, with an s unless n is 1 ("1 open stream").
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
