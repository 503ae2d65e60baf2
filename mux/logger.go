package mux

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// yamuxLogger routes yamux's printf-style logs into slog. yamux logs every
// transport error at "[ERR]", including the ordinary end of a session, so
// its lines go to debug level; sessions report their own outcome.
type yamuxLogger struct{ log *slog.Logger }

func (l yamuxLogger) Print(v ...any) { l.emit(fmt.Sprint(v...)) }

func (l yamuxLogger) Printf(format string, v ...any) { l.emit(fmt.Sprintf(format, v...)) }

func (l yamuxLogger) Println(v ...any) { l.emit(fmt.Sprintln(v...)) }

func (l yamuxLogger) emit(msg string) {
	l.log.Log(context.Background(), slog.LevelDebug, strings.TrimSpace(msg))
}

// DiscardLogger returns a logger that drops everything; libraries use it
// when their caller passed none.
func DiscardLogger() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}
