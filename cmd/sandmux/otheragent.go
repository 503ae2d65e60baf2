package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sandmux/sandmux/agent"
)

// otherAgentDirs lists this user's default agent directories other than
// dir: the one under XDG_RUNTIME_DIR (or /run/user/UID, where a shell
// without the variable still has one) and the one under the home
// directory. A shell without XDG_RUNTIME_DIR (su, `sudo -u USER -i`,
// cron, a tmux server started from one) uses ~/.cache/sandmux while the
// desktop's terminals use $XDG_RUNTIME_DIR/sandmux: two agents, each with
// its own sessions, and `sandmux status` or `agent --stop` in one shell
// sees only one of them. None when --agent-dir names the directory.
func otherAgentDirs(c *cli.Context, dir string) []string {
	if c.String("agent-dir") != "" {
		return nil
	}
	var dirs []string
	add := func(d string) {
		if d != dir && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	runtime := os.Getenv("XDG_RUNTIME_DIR")
	if !filepath.IsAbs(runtime) || !ownedByMe(runtime) {
		runtime = fmt.Sprintf("/run/user/%d", os.Getuid())
	}
	if fi, err := os.Stat(runtime); err == nil && fi.IsDir() && ownedByMe(runtime) {
		add(agent.DefaultDir(runtime, ""))
	}
	if home, err := os.UserHomeDir(); err == nil && ownedByMe(home) {
		add(agent.DefaultDir("", home))
	}
	if home, ok := userHome(); ok {
		add(agent.DefaultDir("", home))
	}
	return dirs
}

// otherAgent returns another default directory of this user's where an
// agent answers, or "".
func otherAgent(c *cli.Context, dir string) string {
	for _, d := range otherAgentDirs(c, dir) {
		if _, err := os.Stat(agent.SocketPath(d)); err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := agent.GetStatus(ctx, d)
		cancel()
		if err == nil {
			return d
		}
	}
	return ""
}
