package main

import (
	"fmt"
	"path/filepath"
	"strings"
)

// tildePath expands a leading "~" or "~/" in p, the value of --flag or of
// its variable, to the home directory home returns. Quoted in a shell
// (export SANDMUX_AGENT_DIR="~/.sandmux") or written in an environment
// file, ~ reaches sandmux unexpanded, and would name a directory called
// "~" in whatever directory ssh or the server was started from: an agent
// for each directory ssh runs in, and a "~" that `rm -rf ~` removes
// wrongly. "~user" is refused rather than guessed.
func tildePath(flag, p string, home func() (string, error)) (string, error) {
	if !strings.HasPrefix(p, "~") {
		return p, nil
	}
	// On Windows, ~\ too: cmd.exe, Windows PowerShell and a ProxyCommand
	// (started without a shell there) leave ~ as it is, and a path there
	// is written with backslashes.
	if p != "~" && !strings.HasPrefix(p, "~/") && !strings.HasPrefix(p, "~"+string(filepath.Separator)) {
		return "", fmt.Errorf("--%s %s: ~USER is not expanded here; give the absolute path", flag, p)
	}
	h, err := home()
	if err != nil {
		return "", fmt.Errorf("--%s %s: no home directory for ~ (%w); give the absolute path", flag, p, err)
	}
	return filepath.Join(h, p[1:]), nil
}
