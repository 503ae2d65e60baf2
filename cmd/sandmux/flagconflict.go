package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sandmux/sandmux/client"
)

// switchRef names where the switch called name was turned on: the flag,
// or the variable that set it, which the user then has to unset rather
// than drop from a command line that does not hold it.
func switchRef(c *cli.Context, name string) string {
	if env := envSource(c, name); env != "" {
		return env + "=" + os.Getenv(env)
	}
	return "--" + name
}

// dropOne is the end of a conflict's line: drop the flag, or turn off
// the switch that makes it moot where it came from.
func dropOne(c *cli.Context, flag, sw string) string {
	if env := envSource(c, sw); env != "" {
		return fmt.Sprintf("drop --%s, or unset %s", flag, env)
	}
	return fmt.Sprintf("drop --%s or --%s", flag, sw)
}

// clientConflicts refuses flags of proxy and forward that another flag
// makes moot, each given on the command line (a variable may be set for
// every command, and is not a choice made for this one). Each was
// ignored without a word: `proxy --no-agent --persist 1h` ran, and the
// user's agent did not stay.
func clientConflicts(c *cli.Context) error {
	off := ""
	switch {
	case c.Bool("raw"):
		off = "raw"
	case c.Bool("no-agent"):
		off = "no-agent"
	}
	if off != "" {
		for _, f := range []string{"persist", "agent-dir"} {
			if f == "agent-dir" && c.Command.Name == "forward" && c.Bool("background") {
				continue // a background forward's log goes there
			}
			if onCommandLine(c, []string{f}) {
				return fmt.Errorf("--%s is the shared agent's, and %s runs without one: %s", f, switchRef(c, off), dropOne(c, f, off))
			}
		}
	}
	if c.Bool("raw") {
		for _, f := range []string{"keepalive", "resume-timeout"} {
			if onCommandLine(c, []string{f}) {
				return fmt.Errorf("--%s is a sandmux session's, and --raw opens a plain WebSocket, which has none: drop --%s or --raw", f, f)
			}
		}
	}
	if err := resumeConflict(c); err != nil {
		return err
	}
	return tlsConflict(c)
}

// resumeConflict refuses --resume-timeout beside --no-resume, which
// turns off what it times.
func resumeConflict(c *cli.Context) error {
	if c.Bool("no-resume") && onCommandLine(c, []string{"resume-timeout"}) {
		return fmt.Errorf("--resume-timeout is how long a lost session resumes, and %s turns resuming off: %s", switchRef(c, "no-resume"), dropOne(c, "resume-timeout", "no-resume"))
	}
	return nil
}

// tlsConflict refuses --ca beside --insecure, which skips the check the
// CA is for.
func tlsConflict(c *cli.Context) error {
	if c.Bool("insecure") && onCommandLine(c, []string{"ca"}) {
		return fmt.Errorf("--insecure skips the certificate check that --ca is for: drop --insecure to trust only the CA, or --ca")
	}
	return nil
}

// headerConflict refuses a --header called name that cfg already has,
// from another --header (the server reads one of the two, which one a
// proxy on the way decides) or, for Authorization, from the token: the
// client library's line named --token also for a token from
// --token-file or SANDMUX_TOKEN.
func headerConflict(c *cli.Context, cfg client.Config, name string) error {
	if cfg.Header.Get(name) != "" {
		return fmt.Errorf("--header %s is given twice: give each header once", name)
	}
	if !strings.EqualFold(name, "Authorization") || cfg.Token == "" {
		return nil
	}
	switch {
	case c.String("token-file") != "":
		return errors.New("--header Authorization and --token-file both give the credentials: drop one of them")
	case onCommandLine(c, []string{"token"}):
		return errors.New("--header Authorization and --token both give the credentials: drop one of them")
	}
	return errors.New("--header Authorization and SANDMUX_TOKEN both give the credentials: drop the header, or unset SANDMUX_TOKEN")
}

// stopConflict refuses agent --stop with a flag for an agent to start:
// the running agent keeps its own settings, and stopping it uses none.
func stopConflict(c *cli.Context) error {
	if !c.Bool("stop") {
		return nil
	}
	for _, f := range []string{"persist", "keepalive", "resume-timeout", "no-resume", "log-level"} {
		if onCommandLine(c, []string{f}) {
			return fmt.Errorf("--stop stops the running agent, which has its own settings: drop --%s (give it to the next `sandmux agent` or proxy)", f)
		}
	}
	return nil
}

// bindsOverlap reports whether two -L BINDs at one port take the same
// address: the same one, or one that holds the other (every interface,
// every IPv4 address, localhost's 127.0.0.1 and [::1]). Listening on the
// second then failed as "in use (another forward, or a program listening
// there?)", with the other one this very command.
func bindsOverlap(a, b string) bool {
	expand := func(h string) []string {
		switch strings.ToLower(h) {
		case "localhost":
			return []string{"127.0.0.1", "::1"}
		}
		return []string{h}
	}
	every := func(h string) bool { return h == "" || h == "::" }
	v4 := func(h string) bool { ip := net.ParseIP(h); return ip != nil && ip.To4() != nil }
	for _, x := range expand(a) {
		for _, y := range expand(b) {
			switch {
			case x == y, every(x), every(y),
				x == "0.0.0.0" && v4(y), y == "0.0.0.0" && v4(x):
				return true
			}
		}
	}
	return false
}
