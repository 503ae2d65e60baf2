package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// valueHint finds the flag value that failed to parse and says what a
// good one looks like. The flag package reports a bad duration on the
// command line as "parse error" with no word about units, and a bad
// environment value with strconv's wording; its errors wrap nothing, so
// the value is looked up again here rather than read out of the text.
// The look-up follows urfave/cli's order, so that the value it names is
// the one the parser stopped at: every flag's environment first, in the
// order the flags are declared, then the arguments from the left up to
// the first that is not a flag. It returns nil when the parser stopped at
// anything else.
func valueHint(c *cli.Context) error {
	if c.Command == nil {
		return nil
	}
	for _, f := range c.Command.Flags {
		if hint, stop := envHint(f); stop {
			return hint
		}
	}
	var args []string
	if l := c.Lineage(); len(l) > 1 {
		// The parent's arguments are the command's name and what
		// followed it, before any of it was parsed.
		args = l[1].Args().Tail()
	}
	return argHint(c.Command.Flags, args)
}

// envHint checks f's environment value as urfave/cli applies it. stop is
// true when that value fails to parse; hint then says what to set, or is
// nil for a kind of flag it has no words for. Strings never fail.
func envHint(f cli.Flag) (hint error, stop bool) {
	switch f := f.(type) {
	case *cli.DurationFlag:
		if env, v, ok := envValue(f.EnvVars); ok {
			if _, err := time.ParseDuration(v); err != nil {
				return fmt.Errorf("%s=%q %s, e.g. %s=%s", env, v, notDuration(v), env, durationExample(f.Value)), true
			}
		}
	case *cli.BoolFlag:
		if env, v, ok := envValue(f.EnvVars); ok {
			if _, err := strconv.ParseBool(v); err != nil {
				return fmt.Errorf("%s=%q is not a boolean: set it to true or false (or 1 or 0), or unset it", env, v), true
			}
		}
	case *cli.IntFlag:
		if _, v, ok := envValue(f.EnvVars); ok {
			if _, err := strconv.ParseInt(v, 0, 64); err != nil {
				return nil, true
			}
		}
	}
	return nil, false
}

// argHint walks args as the flag package parses them and, if the first
// value it cannot take is a duration's, says what one looks like.
func argHint(flags []cli.Flag, args []string) error {
	byName := map[string]cli.Flag{}
	for _, f := range flags {
		for _, n := range f.Names() {
			byName[n] = f
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || len(a) < 2 || a[0] != '-' {
			return nil // the flags end here
		}
		name, v, inline := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		f, known := byName[name]
		if !known {
			return nil // an unknown flag (or -h) is the parser's stop
		}
		if _, isBool := f.(*cli.BoolFlag); isBool {
			if _, err := strconv.ParseBool(v); inline && err != nil {
				// The parser stops at --flag=maybe, and says "parse
				// error".
				return fmt.Errorf("--%s=%s: --%s is a switch: give it alone to turn it on, or --%s=false", name, v, name, name)
			}
			continue
		}
		if !inline {
			if i+1 >= len(args) {
				return nil
			}
			i++
			v = args[i]
		}
		switch f := f.(type) {
		case *cli.DurationFlag:
			if _, err := time.ParseDuration(v); err != nil {
				return fmt.Errorf("--%s %q %s, e.g. --%s %s", f.Name, v, notDuration(v), f.Name, durationExample(f.Value))
			}
		case *cli.IntFlag:
			// The parser stops here, and says "parse error" or "value
			// out of range".
			if _, err := strconv.ParseInt(v, 0, strconv.IntSize); errors.Is(err, strconv.ErrRange) {
				return fmt.Errorf("--%s %q is too large, e.g. --%s %d", f.Name, v, f.Name, f.Value)
			} else if err != nil {
				return fmt.Errorf("--%s %q is not a whole number, e.g. --%s %d", f.Name, v, f.Name, f.Value)
			}
		}
	}
	return nil
}

// wellFormedDuration matches what time.ParseDuration reads, whatever
// its size.
var wellFormedDuration = regexp.MustCompile(`^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)

// notDuration says why time.ParseDuration refused v, which its error
// does not: "99999999999h" is spelt right but over the 292 years a
// duration holds, and was told to give a number with a unit.
func notDuration(v string) string {
	if v != "0" && wellFormedDuration.MatchString(v) {
		return "is too long: a duration is at most 2562047h"
	}
	return "is not a duration: give a number with a unit (ms, s, m, h)"
}

// durationExample is a value to show beside a bad duration: the flag's
// default where it has one, as a user would type it ("10m", not
// time.Duration's "10m0s").
func durationExample(d time.Duration) string {
	switch {
	case d <= 0:
		return "30s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// envValue returns the first of envs that is set, as urfave/cli reads
// it: that one counts even when empty, and an empty value is not parsed.
func envValue(envs []string) (name, value string, ok bool) {
	for _, e := range envs {
		if v, set := os.LookupEnv(e); set {
			return e, v, v != ""
		}
	}
	return "", "", false
}
