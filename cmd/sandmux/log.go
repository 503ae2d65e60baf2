package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"
)

// newLogger writes text logs at the named level to w (always stderr or a
// file: in ProxyCommand mode stdout carries stream bytes only).
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	l, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// parseLevel reads a --log-level value.
func parseLevel(level string) (slog.Level, error) {
	switch strings.ToLower(level) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q: use debug, info, warn or error", level)
}

// logLevel is the --log-level flag's Action: a bad level is refused
// where the flag is parsed, also by a command that only passes it on
// (`sandmux agent` starting one in the background).
func logLevel(_ *cli.Context, level string) error {
	_, err := parseLevel(level)
	return err
}
