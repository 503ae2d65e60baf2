package main

import (
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
