package main

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sandmux/sandmux/client"
)

// clientConflicts refuses flags of proxy and forward that another flag
// on the command line makes moot. Each was ignored without a word:
// `proxy --raw --keepalive 5s` ran, and nothing kept the WebSocket
// alive. Both must be on the command line: a variable may be set for
// every command (SANDMUX_NO_RESUME=1 to try a session without
// resumption), and is not a choice made against this command's flags.
// --no-agent refuses none of the agent's flags, as --raw does: the
// agent's own errors say "or use --no-agent", which a ProxyCommand
// with --agent-dir or --persist takes by adding it.
func clientConflicts(c *cli.Context) error {
	if c.Bool("raw") {
		for _, f := range []string{"persist", "agent-dir"} {
			if onCommandLine(c, []string{f}) {
				return fmt.Errorf("--%s is the shared agent's, and --raw runs without one: drop --%s or --raw", f, f)
			}
		}
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

// resumeConflict refuses --resume-timeout beside --no-resume, both on
// the command line: the switch turns off what the flag times.
func resumeConflict(c *cli.Context) error {
	if c.Bool("no-resume") && onCommandLine(c, []string{"no-resume"}) && onCommandLine(c, []string{"resume-timeout"}) {
		return errors.New("--resume-timeout is how long a lost session resumes, and --no-resume turns resuming off: drop --resume-timeout or --no-resume")
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
