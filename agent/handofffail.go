package agent

import (
	"errors"
	"fmt"
)

// handoffFailed is the proxy's line for a hand-off that failed with err;
// stop is Config.StopCommand, for an agent out of descriptors.
func handoffFailed(err error, stop string) string {
	var fl *fdLimitError
	if errors.As(err, &fl) {
		return fmt.Sprintf("hand-off failed: the sandmux agent is out of file descriptors (its limit is %d, the hard limit, ulimit -Hn, of the proxy that started it): "+
			"close some connections, or stop the agent (`%s`) and start the next proxy with a higher ulimit -Hn", fl.limit, stopCommand(stop))
	}
	return "hand-off failed: " + err.Error()
}

// fdLimitError: the agent could not take a proxy's descriptors, being at
// its limit.
type fdLimitError struct{ limit uint64 }

func (e *fdLimitError) Error() string {
	return fmt.Sprintf("the sandmux agent is out of file descriptors (its limit is %d)", e.limit)
}
