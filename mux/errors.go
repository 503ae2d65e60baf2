package mux

import "errors"

// Sentinel errors of the wire protocol and the resume handshake, in one
// block so that callers find every one. Callers test them with errors.Is.
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

	// Errors of the resume handshake.

	// ErrUnknownSession means the server has no state for the session,
	// typically because it restarted.
	ErrUnknownSession = errors.New("the server no longer knows this session (it restarted, or the grace period ran out)")
	// ErrResumeDenied means the resume secret or credentials did not match.
	ErrResumeDenied = errors.New("the server refused to resume the session (wrong resume secret or credentials)")
	// ErrResumeDisabled means the server was started with resumption off.
	ErrResumeDisabled = errors.New("resumption is disabled on the server (--resume-grace 0)")
	// ErrNotResumed matches every *NotResumedError.
	ErrNotResumed = errors.New("could not be resumed")
	// ErrPeerClosed means the peer closed the session deliberately.
	ErrPeerClosed = errors.New("the peer closed the session")
	// ErrResumeProtocol means the peer broke the resumable transport's rules.
	ErrResumeProtocol = errors.New("resumable transport protocol error")
)
