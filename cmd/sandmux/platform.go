package main

import (
	"context"
	"errors"
	"os/signal"
)

// errAgentUnsupported is what agent-only commands say where the agent
// cannot run (Windows).
var errAgentUnsupported = errors.New("the shared agent is not supported on Windows; use --no-agent")

// signalContext is cancelled by the signals that stop a command.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), terminateSignals...)
}
