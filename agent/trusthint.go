package agent

import (
	"crypto/x509"
	"errors"
	"fmt"
	"runtime"

	"github.com/sandmux/sandmux/client"
)

// storeReadOnce is whether this platform's Go reads the system's trust
// store once per process (from files) rather than asking the system at
// each check, as it does on macOS and Windows.
var storeReadOnce = runtime.GOOS != "darwin" && runtime.GOOS != "windows"

// trustStoreHint adds to err, a failed open, that a CA added to the
// system's store after the agent started is not seen until it restarts,
// when err is an https:// proxy's certificate of an unknown authority:
// the user told to add its CA there, and who did, would otherwise meet
// the same refusal again.
func trustStoreHint(err error, stop string) error {
	var pe *client.ProxyError
	var ua x509.UnknownAuthorityError
	if !storeReadOnce || !errors.As(err, &pe) || !errors.As(pe.Err, &ua) {
		return err
	}
	return fmt.Errorf("%w; the agent read the system's trust store when it started: after adding a CA there, run `%s`", err, stopCommand(stop))
}
