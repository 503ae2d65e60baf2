package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sandmux/sandmux/agent"
)

// agentDirFlag locates the agent.
func agentDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "agent-dir", EnvVars: []string{"SANDMUX_AGENT_DIR"}, Usage: "agent socket and log `DIR` (default $XDG_RUNTIME_DIR/sandmux, else ~/.cache/sandmux)", TakesFile: true, Action: nonEmpty("agent-dir", "the directory the agent runs in")}
}

// agentFlags locate and tune the agent; proxy and forward pass them on to
// the agent they start, and send their own resume settings with each
// request, where the agent's apply only to requests that do not say.
func agentFlags(forAgent bool) []cli.Flag {
	resumeTimeout := "how long a session whose WebSocket was lost keeps trying to resume"
	noResume := "do not offer resumable sessions (sandmux.v2)"
	if forAgent {
		resumeTimeout += ", for proxies that do not say (each proxy sends its own)"
		noResume += ", for proxies that do not say (each proxy sends its own)"
	}
	return []cli.Flag{
		agentDirFlag(),
		&cli.DurationFlag{Name: "persist", Value: 10 * time.Minute, EnvVars: []string{"SANDMUX_PERSIST"}, Usage: "how long the agent stays after its last stream closes (0 = forever)", Action: nonNegative("persist", "forever")},
		&cli.DurationFlag{Name: "keepalive", Value: 15 * time.Second, EnvVars: []string{"SANDMUX_KEEPALIVE"}, Usage: "session keepalive interval, 1s to 1h; a silent path is dropped within 2x this", Action: keepaliveRange},
		&cli.DurationFlag{Name: "resume-timeout", Value: 10 * time.Minute, EnvVars: []string{"SANDMUX_RESUME_TIMEOUT"}, Usage: resumeTimeout, Action: positive("resume-timeout", "10m (--no-resume turns resumption off)")},
		&cli.BoolFlag{Name: "no-resume", EnvVars: []string{"SANDMUX_NO_RESUME"}, Usage: noResume},
	}
}

func agentCommand() *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "the background process that shares one WebSocket per sandbox (started by proxy)",
		// Without it, the help named --foreground and --stop but not
		// what the command alone does.
		Description: "The first `sandmux proxy` (or forward) starts one; you need not.\n\n" +
			"   sandmux agent                                  # start one in the background unless one runs; prints its pid, socket and log\n" +
			"   sandmux agent --stop                           # stop it now (its open streams end)\n" +
			"   sandmux agent --foreground --log-level debug   # run one in this terminal, when none runs\n\n" +
			"It exits --persist after its last stream closed. `sandmux status` shows its sessions.",
		Flags: append(agentFlags(true),
			&cli.BoolFlag{Name: "foreground", Usage: "run in this terminal, logging to stderr"},
			&cli.BoolFlag{Name: "stop", Usage: "stop the running agent now (open streams end)"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", Action: logLevel},
			&cli.BoolFlag{Name: "daemon", Hidden: true, Usage: "internal: run detached, logging to the agent's log file"},
			&cli.BoolFlag{Name: "spawn", Hidden: true, Usage: "internal: start a detached agent (--daemon, with the other flags given) and exit"},
		),
		Action: runAgent,
	}
}

// agentDir resolves --agent-dir or the per-user default.
func agentDir(c *cli.Context) (string, error) {
	if d := c.String("agent-dir"); d != "" {
		d, err := tildePath("agent-dir", d, myHome)
		if err != nil {
			return "", err
		}
		return filepath.Abs(d)
	}
	return defaultAgentDir()
}

// notADirectory refuses an agent directory that exists as something
// else: status and agent --stop, which make no directory, said "no agent
// running" and succeeded, for a path no agent can ever run in.
func notADirectory(dir string) error {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("agent directory %s is not a directory: give the directory the agent runs in (--agent-dir or SANDMUX_AGENT_DIR), or neither for the default one", dir)
	}
	return nil
}

// defaultAgentDir is the per-user agent directory, where an agent-dir
// not given puts it.
func defaultAgentDir() (string, error) {
	// The XDG base directory spec: a relative path is invalid, ignore it.
	runtime := os.Getenv("XDG_RUNTIME_DIR")
	if fi, err := os.Stat(runtime); !filepath.IsAbs(runtime) || err != nil || !fi.IsDir() || !ownedByMe(runtime) {
		// Relative (invalid per the spec), or another user's, carried
		// over by `sudo -E` or `su`: a directory made in it would lock
		// its owner out of their own agent directory. Or gone: the
		// system makes it for a login and removes it after the last
		// one, under a tmux that outlived it, and a user cannot make
		// it again (/run/user is root's).
		runtime = ""
	}
	home, err := myHome()
	if err != nil && runtime == "" {
		return "", fmt.Errorf("cannot find a directory for the agent: %w (set --agent-dir)", err)
	}
	return agent.DefaultDir(runtime, home), nil
}

// agentStopCommand is the `sandmux agent --stop` that reaches the agent
// in dir, for a hint to copy: with --agent-dir unless dir is the default
// one, since without it the command stops the default directory's agent,
// another one, or none. An agent is always started with --agent-dir, so
// whether one was given cannot tell.
func agentStopCommand(c *cli.Context, dir string) string {
	if def, err := defaultAgentDir(); c.String("agent-dir") == "" || (err == nil && def == dir) {
		return agent.DefaultStopCommand
	}
	return agent.DefaultStopCommand + " --agent-dir " + shellQuote(dir)
}

// myHome is $HOME, unless it is unset (a service, cron) or another
// user's (carried over by `sudo -E` or `su`): then this user's home from
// the user database.
func myHome() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil || !ownedByMe(home) {
		if h, ok := userHome(); ok {
			home, err = h, nil
		}
	}
	return home, err
}

// userHome is this user's home directory from the user database, if it
// exists and is this user's: a container's passwd entry may say / or
// /nonexistent.
func userHome() (string, bool) {
	u, err := user.Current()
	if err != nil || u.HomeDir == "" || !ownedByMe(u.HomeDir) {
		return "", false
	}
	if _, err := os.Stat(u.HomeDir); err != nil {
		return "", false
	}
	return u.HomeDir, true
}

func runAgent(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	if !agentSupported {
		return errAgentUnsupported
	}
	dir, err := agentDir(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.Bool("stop") && (c.Bool("foreground") || c.Bool("daemon")) {
		return errors.New("--stop and --foreground: give one (--stop stops the running agent, --foreground runs one here)")
	}
	if err := stopConflict(c); err != nil {
		return err
	}
	if err := resumeConflict(c); err != nil {
		return err
	}
	switch {
	case c.Bool("stop"):
		if err := notADirectory(dir); err != nil {
			return err
		}
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := agent.Stop(sctx, dir); err != nil {
			if errors.Is(err, agent.ErrStopping) {
				// Another `agent --stop` (or --persist) began it: wait
				// for the same end as the first.
				fmt.Fprintln(c.App.ErrWriter, "sandmux: the agent is already stopping (closing its sessions); waiting for it")
				if err := agent.WaitStopped(sctx, dir); err != nil {
					return err
				}
				fmt.Fprintln(c.App.ErrWriter, "sandmux: agent stopped")
				return nil
			}
			if errors.Is(err, agent.ErrNotRunning) {
				if other := otherAgent(c, dir); other != "" {
					fmt.Fprintf(c.App.ErrWriter, "sandmux: no agent was running in %s, but one runs in %s, started by a shell with another XDG_RUNTIME_DIR or HOME: `sandmux agent --stop --agent-dir %s` stops it\n", dir, other, other)
					return nil
				}
				fmt.Fprintln(c.App.ErrWriter, "sandmux: no agent was running")
				return nil
			}
			return err
		}
		fmt.Fprintln(c.App.ErrWriter, "sandmux: agent stopped")
		return nil
	case c.Bool("spawn"):
		// The starter waits for this process, so the agent it starts is
		// left to init, not to a starter that would never reap it.
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		args := slices.Clone(os.Args[1:])
		for i, a := range args {
			if a == "--spawn" {
				args[i] = "--daemon"
			}
		}
		return agent.StartDetached(exe, args, os.Environ())
	case c.Bool("foreground"), c.Bool("daemon"):
		return serveAgent(ctx, c, dir)
	}
	conn, err := agent.Ensure(ctx, dir, agentStarter(c, dir))
	if err != nil {
		return err
	}
	_ = conn.Close()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := agent.GetStatus(sctx, dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "sandmux: agent running (pid %d, socket %s, log %s)\n", st.PID, st.Socket, filepath.Join(dir, agent.LogName))
	if note := agentVersionNote(st.Version, agentStopCommand(c, dir)); note != "" {
		fmt.Fprintln(c.App.ErrWriter, "sandmux: "+note)
	}
	return nil
}

// serveAgent runs the agent in this process until it stops.
func serveAgent(ctx context.Context, c *cli.Context, dir string) error {
	moverRuntime()
	if err := agent.EnsureDir(dir); err != nil {
		return err
	}
	out := c.App.ErrWriter
	if c.Bool("daemon") {
		lf, err := agent.OpenLogFile(filepath.Join(dir, agent.LogName), 4<<20)
		if err != nil {
			return err
		}
		defer lf.Close()
		out = lf
	}
	log, err := newLogger(out, c.String("log-level"))
	if err != nil {
		return err
	}
	cfg := agent.DefaultConfig(dir)
	cfg.Persist = c.Duration("persist")
	cfg.Mux.KeepAliveInterval = c.Duration("keepalive")
	cfg.ResumeTimeout = c.Duration("resume-timeout")
	cfg.NoResume = c.Bool("no-resume")
	cfg.Version = version
	cfg.StopCommand = agentStopCommand(c, dir)
	cfg.Logger = log
	if c.Bool("daemon") {
		// Serving: the starter (agent --spawn) stops reading stderr.
		cfg.OnListening = releaseStdio
	}
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	defer trimWhenIdle(a.Carrying)()
	if err := a.Serve(ctx); err != nil {
		if c.Bool("daemon") && errors.Is(err, agent.ErrAlreadyRunning) {
			// Another agent won the race and is coming up (it holds the
			// run lock): the starter finds it, as it would this one.
			log.Info("another agent serves this directory; exiting", "err", err)
			return nil
		}
		if errors.Is(err, agent.ErrAlreadyRunning) {
			// --foreground, to watch an agent's logs: one line (on the
			// terminal the log goes to as well) that says how.
			return fmt.Errorf("%w; its log is %s, or stop it (`%s`) to run one here", err, filepath.Join(dir, agent.LogName), agentStopCommand(c, dir))
		}
		log.Error("agent failed", "err", err)
		return err
	}
	return nil
}

// agentStarter returns the function that starts a detached agent with the
// same directory and tuning as this process. The agent's command line and
// environment carry no credentials: those travel over the socket.
func agentStarter(c *cli.Context, dir string) func() error {
	return func() error {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		level := ""
		if c.IsSet("log-level") { // `sandmux agent --log-level debug`
			level = c.String("log-level")
		}
		args := spawnArgs(dir, c.Duration("persist"), c.Duration("keepalive"), c.Duration("resume-timeout"), c.Bool("no-resume"), level)
		return agent.Spawn(exe, args, scrubbedEnv())
	}
}

// spawnArgs is the command line of a detached agent; level "" leaves
// its log level at the default.
func spawnArgs(dir string, persist, keepalive, resumeTimeout time.Duration, noResume bool, level string) []string {
	args := []string{"agent", "--spawn", "--agent-dir", dir, "--persist", persist.String(), "--keepalive", keepalive.String()}
	if noResume {
		// Not with --resume-timeout, which it makes moot and which the
		// agent then refuses (resumeConflict).
		args = append(args, "--no-resume")
	} else {
		args = append(args, "--resume-timeout", resumeTimeout.String())
	}
	if level != "" {
		args = append(args, "--log-level", level)
	}
	return args
}

// scrubbedEnv is this process's environment without credentials.
func scrubbedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(name) {
		case "SANDMUX_TOKEN", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY":
			// Credentials (a proxy URL may hold a password); each request
			// brings its own proxy setting, and the agent reads none.
			continue
		}
		env = append(env, kv)
	}
	return env
}
