package main

import (
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sandmux/sandmux/internal/logflood"
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
func logLevel(c *cli.Context, level string) error {
	if err := nonEmpty("log-level", "debug, info, warn or error")(c, level); err != nil {
		return err
	}
	if _, err := parseLevel(level); err != nil {
		return fmt.Errorf("%s: unknown log level: use debug, info, warn or error", valueRef(c, "log-level")(strconv.Quote(level)))
	}
	return nil
}

// httpErrorLog is an http.Server's ErrorLog that writes into log: left
// nil, net/http wrote its own complaints (an accept failing on a full
// file table, retried every few milliseconds) to stderr through the
// standard logger, in another format than every other line, without a
// level, and with no limit. They are marked as lines a peer can repeat,
// which log, a logflood.Limiter's, limits.
func httpErrorLog(log *slog.Logger) *stdlog.Logger {
	return stdlog.New(httpLogWriter{log}, "", 0)
}

type httpLogWriter struct{ log *slog.Logger }

func (w httpLogWriter) Write(p []byte) (int, error) {
	w.log.Warn("http server error", logflood.Limit, "err", strings.TrimPrefix(strings.TrimSpace(string(p)), "http: "))
	return len(p), nil
}
