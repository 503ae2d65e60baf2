// Command sandmux carries many SSH, SCP and SFTP connections over one
// WebSocket. See README.md.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

// Stamped by the Makefile with -ldflags -X.
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	app := newApp()
	stderr := rawTermWriter{f: os.Stderr}
	app.ErrWriter = stderr
	if err := app.Run(os.Args); err != nil {
		var ec cli.ExitCoder
		code := 1
		if errors.As(err, &ec) {
			code = ec.ExitCode()
		}
		if msg := err.Error(); msg != "" {
			printError(stderr, os.Stderr, msg)
			tellSSH(msg)
		}
		os.Exit(code)
	}
}

func newApp() *cli.App {
	// `sandmux --version` as well as `sandmux version`, without the -v
	// alias, which proxy and forward use for debug logs.
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version", DisableDefaultText: true}
	cli.VersionPrinter = func(c *cli.Context) { _, _ = fmt.Fprintf(c.App.Writer, "sandmux %s\n", c.App.Version) }
	app := &cli.App{
		Name:                 "sandmux",
		Usage:                "many SSH, SCP and SFTP connections over one WebSocket",
		Version:              version + " (" + commit + ")",
		EnableBashCompletion: true,
		// main prints errors itself, once, on one line.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   usageError,
		// Without it, an unknown command gets "No help topic for ...".
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				if near := nearCommand(c.App.Commands, c.Args().First()); near != "" {
					return fmt.Errorf("unknown command %q: did you mean %s? (the commands are in `sandmux --help`)", c.Args().First(), near)
				}
				return fmt.Errorf("unknown command %q (the commands are in `sandmux --help`)", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		Commands: []*cli.Command{
			serverCommand(),
			proxyCommand(),
			agentCommand(),
			statusCommand(),
			versionCommand(),
			forwardCommand(),
			sshConfigCommand(),
			doctorCommand(),
			completionCommand(),
		},
	}
	// A flag mistake must not print help to stdout: under ssh, stdout is
	// the stream.
	for _, cmd := range app.Commands {
		cmd.OnUsageError = usageError
		cmd.Before = emptyEnvUnset(cmd)
		if len(cmd.Subcommands) == 0 {
			// Otherwise urfave/cli gives each command a "help" (and "h")
			// subcommand, which is all that shell completion then offers
			// after it: `sandmux completion <TAB>` proposed "help h", not
			// a shell. --help still works.
			cmd.HideHelpCommand = true
		}
	}
	return app
}

// usageError keeps flag mistakes to one line that says where help is.
func usageError(c *cli.Context, err error, _ bool) error {
	if hint := valueHint(c); hint != nil {
		err = hint
	}
	name := "sandmux"
	if c.Command != nil && c.Command.Name != "" && c.Command.Name != name {
		name += " " + c.Command.Name
	}
	return fmt.Errorf("%w (see `%s --help`)", err, name)
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version",
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			_, err := fmt.Fprintf(c.App.Writer, "sandmux %s (%s)\n", version, commit)
			return err
		},
	}
}
