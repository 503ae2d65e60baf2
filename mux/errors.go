package mux

import "errors"

// Sentinel errors of the wire protocol. Callers test them with errors.Is.
var (
	// ErrHeaderVersion means a stream header carries a version this build
	// does not speak.
	ErrHeaderVersion = errors.New("unsupported stream header version")
	// ErrHeaderTooLarge means a stream header exceeds MaxHeaderSize.
	ErrHeaderTooLarge = errors.New("stream header too large")
	// ErrHeaderMalformed means a stream header could not be parsed.
	ErrHeaderMalformed = errors.New("malformed stream header")
	// ErrSessionDead means the session's transport stopped delivering bytes
	// for longer than the liveness timeout and was closed.
	ErrSessionDead = errors.New("session stopped responding")
	// ErrSessionEnded means the session carrying a stream ended before the
	// stream did.
	ErrSessionEnded = errors.New("session ended")
	// ErrCloseTimeout means a stream this side had finished writing was
	// closed because the peer sent nothing on it for the close timeout
	// (Config.StreamCloseTimeout) without finishing its side.
	ErrCloseTimeout = errors.New("stream closed: the peer sent nothing for the close timeout after this side finished")
	// ErrStreamReset means the peer reset the stream rather than ending
	// it: the server does so when the connection to its target fails, so
	// that the bytes that came are not taken for all of them.
	ErrStreamReset = errors.New("the server reset the stream: the connection inside the sandbox failed")
	// ErrInvalidConfig wraps every configuration validation failure.
	ErrInvalidConfig = errors.New("invalid mux config")
)
