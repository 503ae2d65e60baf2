package mux

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/internal/neterrno"
)

// SubprotocolResumable is sandmux.v1's stream layer over a resumable
// transport: every WebSocket message starts with a type byte, the session's
// byte stream is numbered, acknowledged and replayed after a reconnect.
// Clients offer it first and v1 second, so either side can be older.
const SubprotocolResumable = "sandmux.v2"

// ResumeHeader marks the upgrade request of a resume, so that a server at
// its session limit still lets existing sessions come back.
const ResumeHeader = "Sandmux-Resume"

// Message types of the resumable transport (the first byte of every
// WebSocket message on a sandmux.v2 connection).
const (
	msgData    = 0x00 // payload: session bytes
	msgAck     = 0x01 // payload: u64 total session bytes received
	msgHello   = 0x02 // client's first message
	msgWelcome = 0x03 // server's answer to hello
	msgEnd     = 0x04 // the sender closed the session: do not resume
)

// Sizes of the handshake fields.
const (
	SessionIDSize = 16
	SecretSize    = 32
	helloSize     = 1 + SessionIDSize + SecretSize + 8
	welcomeSize   = 1 + 1 + SessionIDSize + SecretSize + 8 + 8
)

// Hello opens a resumable transport: a new session (zero ID), or the
// resumption of one, with the bytes the client has received of it.
type Hello struct {
	ID       [SessionIDSize]byte
	Secret   [SecretSize]byte
	Received uint64
}

// Resuming reports whether the hello asks to resume.
func (h Hello) Resuming() bool { return h.ID != [SessionIDSize]byte{} }

// WelcomeStatus is the server's verdict on a Hello.
type WelcomeStatus uint8

// Welcome statuses. Wire values; never renumber.
const (
	WelcomeNew      WelcomeStatus = 0 // a new session was made
	WelcomeResumed  WelcomeStatus = 1 // the session continues
	WelcomeUnknown  WelcomeStatus = 2 // no such session (server restarted, or grace expired)
	WelcomeDenied   WelcomeStatus = 3 // wrong secret or credentials
	WelcomeDisabled WelcomeStatus = 4 // the server keeps no resume state
)

// Welcome answers a Hello.
type Welcome struct {
	Status   WelcomeStatus
	ID       [SessionIDSize]byte
	Secret   [SecretSize]byte
	Received uint64        // bytes the server has received of the session
	Grace    time.Duration // how long the server keeps a detached session
}

// Err maps a non-success status to its error.
func (w Welcome) Err() error {
	switch w.Status {
	case WelcomeNew, WelcomeResumed:
		return nil
	case WelcomeUnknown:
		return ErrUnknownSession
	case WelcomeDenied:
		return ErrResumeDenied
	case WelcomeDisabled:
		return ErrResumeDisabled
	}
	return fmt.Errorf("%w: welcome status %d", ErrResumeProtocol, w.Status)
}

// MarshalBinary encodes h as one WebSocket message.
func (h Hello) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, helloSize)
	b = append(b, msgHello)
	b = append(b, h.ID[:]...)
	b = append(b, h.Secret[:]...)
	return binary.BigEndian.AppendUint64(b, h.Received), nil
}

// UnmarshalBinary decodes a hello message.
func (h *Hello) UnmarshalBinary(b []byte) error {
	if len(b) != helloSize || b[0] != msgHello {
		return fmt.Errorf("%w: bad hello (%d bytes)", ErrResumeProtocol, len(b))
	}
	copy(h.ID[:], b[1:])
	copy(h.Secret[:], b[1+SessionIDSize:])
	h.Received = binary.BigEndian.Uint64(b[1+SessionIDSize+SecretSize:])
	return nil
}

// MarshalBinary encodes w as one WebSocket message.
func (w Welcome) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, welcomeSize)
	b = append(b, msgWelcome, byte(w.Status))
	b = append(b, w.ID[:]...)
	b = append(b, w.Secret[:]...)
	b = binary.BigEndian.AppendUint64(b, w.Received)
	return binary.BigEndian.AppendUint64(b, uint64(w.Grace/time.Millisecond)), nil
}

// UnmarshalBinary decodes a welcome message.
func (w *Welcome) UnmarshalBinary(b []byte) error {
	if len(b) != welcomeSize || b[0] != msgWelcome {
		return fmt.Errorf("%w: bad welcome (%d bytes)", ErrResumeProtocol, len(b))
	}
	graceMS := binary.BigEndian.Uint64(b[2+SessionIDSize+SecretSize+8:])
	if graceMS > uint64(math.MaxInt64/int64(time.Millisecond)) {
		// It would overflow time.Duration into a negative grace.
		return fmt.Errorf("%w: welcome grace of %d ms is out of range", ErrResumeProtocol, graceMS)
	}
	w.Status = WelcomeStatus(b[1])
	copy(w.ID[:], b[2:])
	copy(w.Secret[:], b[2+SessionIDSize:])
	w.Received = binary.BigEndian.Uint64(b[2+SessionIDSize+SecretSize:])
	w.Grace = time.Duration(graceMS) * time.Millisecond
	return nil
}

// SendHello sends h as the first message on a sandmux.v2 WebSocket. A
// new session's client may go on at once (Resumable.AwaitWelcome).
func SendHello(ctx context.Context, ws *websocket.Conn, h Hello) error {
	b, _ := h.MarshalBinary()
	if err := ws.Write(ctx, websocket.MessageBinary, b); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	return nil
}

// ClientHandshake sends h as the first message on a sandmux.v2 WebSocket
// and reads the server's welcome.
func ClientHandshake(ctx context.Context, ws *websocket.Conn, h Hello) (Welcome, error) {
	if err := SendHello(ctx, ws, h); err != nil {
		return Welcome{}, err
	}
	typ, msg, err := ws.Read(ctx)
	if err != nil {
		return Welcome{}, fmt.Errorf("read welcome: %w", err)
	}
	if typ != websocket.MessageBinary {
		return Welcome{}, fmt.Errorf("%w: text welcome", ErrResumeProtocol)
	}
	var w Welcome
	if err := w.UnmarshalBinary(msg); err != nil {
		return Welcome{}, err
	}
	return w, nil
}

// ReadHello reads a client's first message on a sandmux.v2 WebSocket.
func ReadHello(ctx context.Context, ws *websocket.Conn) (Hello, error) {
	ws.SetReadLimit(helloSize)
	typ, msg, err := ws.Read(ctx)
	if err != nil {
		return Hello{}, fmt.Errorf("read hello: %w", err)
	}
	if typ != websocket.MessageBinary {
		return Hello{}, fmt.Errorf("%w: text hello", ErrResumeProtocol)
	}
	var h Hello
	return h, h.UnmarshalBinary(msg)
}

// WriteWelcome answers a hello.
func WriteWelcome(ctx context.Context, ws *websocket.Conn, w Welcome) error {
	b, _ := w.MarshalBinary()
	return ws.Write(ctx, websocket.MessageBinary, b)
}

// NotResumedError is the permanent end of a resumable session whose
// WebSocket was lost: nobody could resume it within Within (the grace
// period ran out), or, with Within zero, the server refused at once.
// Last, when the grace period ran out, is why the latest attempt to
// resume failed, if one did (Resumable.NoteAttempt).
type NotResumedError struct {
	Within time.Duration
	Cause  error
	Last   error
}

// Error reads as the tail of "session to HOST could not be resumed ...".
func (e *NotResumedError) Error() string {
	switch {
	case e.Within == 0:
		return fmt.Sprintf("could not be resumed: %v", e.Cause)
	case e.Last != nil:
		return fmt.Sprintf("could not be resumed within %s (lost: %s; last attempt: %v)", e.Within, lossWords(e.Cause), e.Last)
	}
	return fmt.Sprintf("could not be resumed within %s: %s", e.Within, lossWords(e.Cause))
}

// lossWords words a lost connection's cause for NotResumedError: in the
// words of LossWords where it has them.
func lossWords(err error) string {
	if w, ok := LossWords(err); ok {
		return w
	}
	if err == nil {
		return "the connection was lost"
	}
	return err.Error()
}

// LossWords says in a few words how a connection ended where the
// WebSocket library's chain of reads ("failed to get reader: failed to
// read frame header: EOF") tells a user nothing: reset, or closed; false
// for any other cause, which its caller words itself.
func LossWords(err error) (string, bool) {
	switch {
	case err == nil:
		return "", false
	case neterrno.Is(err, syscall.ECONNRESET):
		return "the connection was reset", true
	case neterrno.Is(err, syscall.ECONNABORTED):
		// This host ended it: a socket killed with ss -K, as some
		// network managers do when the network changes.
		return "the connection was aborted by this computer", true
	case neterrno.Is(err, syscall.EHOSTUNREACH), neterrno.Is(err, syscall.ENETUNREACH), neterrno.Is(err, syscall.ENETDOWN):
		return "the network to the server went away", true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return "the connection was closed", true
	}
	return "", false
}

// Unwrap returns the cause.
func (e *NotResumedError) Unwrap() error { return e.Cause }

// Is makes errors.Is(err, ErrNotResumed) hold.
func (e *NotResumedError) Is(target error) bool { return target == ErrNotResumed }
