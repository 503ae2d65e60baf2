package server

import "fmt"

// AllowFunc returns the check the server applies to a stream's target,
// for other services of the same process (the embedded SSH server's
// direct-tcpip channels): hostport is allowed when its canonical form is
// def's or one of allow's, and that canonical form is what to dial, as
// the server dials it for a stream. def and allow are validated as in
// Config.
func AllowFunc(def string, allow []string) (func(hostport string) (string, bool), error) {
	a, err := newAllowlist(def, allow)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return func(hostport string) (string, bool) {
		if hostport == "" {
			return "", false
		}
		return a.resolve(hostport)
	}, nil
}
