package agent

import "path/filepath"

// noAnswerError is ErrNoAnswer with the log of the agent that did not
// answer named: its directory may be any --agent-dir, so "its agent.log"
// alone left the user to find which.
type noAnswerError struct{ dir string }

func (e noAnswerError) Error() string {
	return ErrNoAnswer.Error() + " (stopped, stuck, or out of file descriptors: its log, " +
		filepath.Join(e.dir, LogName) + ", may say which); if it does not recover, kill the `sandmux agent` process (a new one starts with the next proxy) or use --no-agent"
}

func (e noAnswerError) Unwrap() error { return ErrNoAnswer }
