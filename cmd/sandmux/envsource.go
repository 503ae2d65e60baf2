package main

import (
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// valueRef returns how to show a value of the flag called name in an
// error: "--name VALUE" when the command line gave it, "ENV=VALUE" when
// it came from the environment, which the user then has to look at (under
// ssh, a ProxyCommand names no flag at all).
func valueRef(c *cli.Context, name string) func(v string) string {
	if env := envSource(c, name); env != "" {
		return func(v string) string { return env + "=" + v }
	}
	return func(v string) string { return "--" + name + " " + v }
}

// envSource is the environment variable that set the flag called name,
// or "" when the command line did (or nothing did).
func envSource(c *cli.Context, name string) string {
	if c == nil || c.Command == nil {
		return ""
	}
	var names, envs []string
	for _, f := range c.Command.Flags {
		if e, ok := f.(interface{ GetEnvVars() []string }); ok && slices.Contains(f.Names(), name) {
			names, envs = f.Names(), e.GetEnvVars()
		}
	}
	env, _, ok := envValue(envs)
	if !ok || onCommandLine(c, names) {
		return "" // the command line's value wins over the variable
	}
	return env
}

// onCommandLine reports whether the command line gave the flag that has
// names, as opposed to its environment variable or its default.
func onCommandLine(c *cli.Context, names []string) bool {
	var args []string
	if l := c.Lineage(); len(l) > 1 {
		// The parent's arguments are the command's name and what
		// followed it, before any of it was parsed.
		args = l[1].Args().Tail()
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		flag, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if strings.HasPrefix(a, "-") && slices.Contains(names, flag) {
			return true
		}
	}
	return false
}

// emptyEnvUnset returns a Before for cmd that gives each of its string
// flags whose variable is set but empty its default back, as an unset
// one would: urfave/cli takes an empty variable as the value "", which
// the flags that refuse "" then refused (SANDMUX_SSH= said `--ssh "":
// use external or embedded`, SANDMUX_TARGET= and SANDMUX_LISTEN= that
// the server's address was empty). An empty value on the command line
// is nonEmpty's to refuse. Defaults are read here, before urfave/cli
// overwrites them with the environment's values.
func emptyEnvUnset(cmd *cli.Command) cli.BeforeFunc {
	var flags []*cli.StringFlag
	defaults := map[*cli.StringFlag]string{}
	for _, f := range cmd.Flags {
		if sf, ok := f.(*cli.StringFlag); ok && len(sf.EnvVars) > 0 {
			flags = append(flags, sf)
			defaults[sf] = sf.Value
		}
	}
	return func(c *cli.Context) error {
		for _, f := range flags {
			if emptyEnv(f.EnvVars) && !onCommandLine(c, f.Names()) {
				if err := c.Set(f.Name, defaults[f]); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

// emptyEnv reports whether the first of envs that is set, the one
// urfave/cli reads, is empty.
func emptyEnv(envs []string) bool {
	for _, e := range envs {
		if v, set := os.LookupEnv(e); set {
			return v == ""
		}
	}
	return false
}

// given reports whether the flag called name was given a value: on the
// command line, or by a variable that is not empty.
func given(c *cli.Context, name string) bool {
	return onCommandLine(c, []string{name}) || envSource(c, name) != ""
}
