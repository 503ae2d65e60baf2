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
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "info", "":
		l = slog.LevelInfo
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return nil, fmt.Errorf("unknown log level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// logLevel is the --log-level flag's Action: a bad level is refused
// where the flag is parsed, also by a command that only passes it on
// (`sandmux agent` starting one in the background).
func logLevel(_ *cli.Context, level string) error {
	_, err := newLogger(io.Discard, level)
	return err
}
