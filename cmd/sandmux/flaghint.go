package main

import (
	"fmt"
	"os"
	"slices"
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
// It returns nil when no duration or boolean value is at fault.
func valueHint(c *cli.Context) error {
	if c.Command == nil {
		return nil
	}
	var args []string
	if l := c.Lineage(); len(l) > 1 {
		// The parent's arguments are the command's name and what
		// followed it, before any of it was parsed.
		args = l[1].Args().Tail()
	}
	for _, f := range c.Command.Flags {
		switch f := f.(type) {
		case *cli.DurationFlag:
			example := durationExample(f.Value)
			if v, ok := flagValue(args, f.Names()); ok {
				if _, err := time.ParseDuration(v); err != nil {
					return fmt.Errorf("--%s %q is not a duration: give a number with a unit (ms, s, m, h), e.g. --%s %s", f.Name, v, f.Name, example)
				}
			}
			if env, v, ok := envValue(f.EnvVars); ok {
				if _, err := time.ParseDuration(v); err != nil {
					return fmt.Errorf("%s=%q is not a duration: give a number with a unit (ms, s, m, h), e.g. %s=%s", env, v, env, example)
				}
			}
		case *cli.BoolFlag:
			if env, v, ok := envValue(f.EnvVars); ok {
				if _, err := strconv.ParseBool(v); err != nil {
					return fmt.Errorf("%s=%q is not a boolean: set it to true or false (or 1 or 0), or unset it", env, v)
				}
			}
		}
	}
	return nil
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

// flagValue returns the last value given on args for a flag with one of
// names, as `--name value` or `--name=value`, up to a "--" that ends the
// flags.
func flagValue(args, names []string) (string, bool) {
	value, found := "", false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name := strings.TrimLeft(a, "-")
		if name == a || name == "" {
			continue
		}
		v, inline := "", false
		if k, rest, ok := strings.Cut(name, "="); ok {
			name, v, inline = k, rest, true
		}
		if !slices.Contains(names, name) {
			continue
		}
		if !inline {
			if i+1 >= len(args) {
				break
			}
			i++
			v = args[i]
		}
		value, found = v, true
	}
	return value, found
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
