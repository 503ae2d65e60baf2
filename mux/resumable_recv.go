package mux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/coder/websocket"
)

// maxMessage bounds one message read from the peer, so a hostile peer
// cannot make this side buffer more than this per message.
const maxMessage = 1 << 20

// Read returns session bytes from the current WebSocket, waiting through
// detachments. Bytes read from a WebSocket after it was detached are
// discarded: the peer replays them from the offset this side reports.
func (r *Resumable) Read(p []byte) (int, error) {
	for {
		if r.cur == nil {
			ws, gen, err := r.waitAttached()
			if err != nil {
				return 0, err
			}
			if err := r.nextData(ws, gen); err != nil {
				r.detach(gen, err)
				continue
			}
			if r.cur == nil {
				continue // a control message
			}
		}
		n, err := r.cur.Read(p)
		if errors.Is(err, websocket.ErrMessageTooBig) {
			// A protocol error (§9.1), not the path's, even if a write
			// detached first: resuming would bring the same message back.
			r.cur = nil
			r.Fail(fmt.Errorf("%w: a message over %d bytes", ErrResumeProtocol, maxMessage))
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			// Bytes that come with a transport error are not trusted:
			// coder/websocket returns a cut frame's partial payload still
			// masked. They are not counted, so the peer replays them.
			n = 0
		}
		r.mu.Lock()
		stale := r.curGen != r.gen
		if !stale {
			r.recv += uint64(n)
		}
		kick := r.recv-r.ackSent >= uint64(r.cfg.AckEvery)
		r.mu.Unlock()
		if stale {
			r.cur = nil
			continue
		}
		if kick {
			r.kickAck()
		}
		if err != nil {
			r.cur = nil
			if !errors.Is(err, io.EOF) {
				r.detach(r.curGen, err)
			}
			if n == 0 {
				continue
			}
		}
		return n, nil
	}
}

// AwaitWelcome is for a client that sends a new session's HELLO and goes
// on without waiting for the answer (spec §9.2): the first message read
// after the next Attach must be the WELCOME, which f takes; an error from
// f, or any other message first, ends the Resumable. Call it before that
// Attach.
func (r *Resumable) AwaitWelcome(f func(Welcome) error) { r.welcome.Store(&f) }

// takeWelcome returns the pending AwaitWelcome handler, once.
func (r *Resumable) takeWelcome() func(Welcome) error {
	if r.welcome.Load() == nil {
		return nil
	}
	if f := r.welcome.Swap(nil); f != nil {
		return *f
	}
	return nil
}

// nextData reads the next message header: data makes it the current
// reader; acks and an awaited welcome are applied here.
func (r *Resumable) nextData(ws *websocket.Conn, gen uint64) error {
	typ, rd, err := ws.Reader(noDeadline)
	if err != nil {
		return err
	}
	if typ != websocket.MessageBinary {
		r.Fail(fmt.Errorf("%w: text message", ErrResumeProtocol))
		return ErrResumeProtocol
	}
	var t [1]byte
	if _, err := io.ReadFull(rd, t[:]); err != nil {
		if errors.Is(err, io.EOF) { // the message's end, not the path's
			err = fmt.Errorf("%w: an empty message", ErrResumeProtocol)
			r.Fail(err)
		}
		return err
	}
	if f := r.takeWelcome(); f != nil {
		return r.applyWelcome(t[0], rd, f)
	}
	switch t[0] {
	case msgData:
		r.cur, r.curGen = rd, gen
		return nil
	case msgAck:
		// One byte more than an ACK's payload, to tell a longer message
		// from one: a malformed ACK ends the session (spec §9.1) rather
		// than failing the next read and resuming.
		var b [9]byte
		n, err := io.ReadFull(rd, b[:])
		if n != 8 || !errors.Is(err, io.ErrUnexpectedEOF) {
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				return err // the connection, not the message
			}
			err = fmt.Errorf("%w: ACK with %s payload, want 8 bytes", ErrResumeProtocol, ackLen(n))
			r.Fail(err)
			return err
		}
		if err := r.onAck(binary.BigEndian.Uint64(b[:8])); err != nil {
			r.Fail(err)
			return err
		}
		return nil
	case msgEnd:
		r.Fail(ErrPeerClosed)
		return ErrPeerClosed
	}
	err = fmt.Errorf("%w: unexpected message type %#x", ErrResumeProtocol, t[0])
	r.Fail(err)
	return err
}

// ackLen describes a malformed ACK's payload length, of which at most
// 9 bytes were read.
func ackLen(n int) string {
	if n > 8 {
		return "a longer"
	}
	return fmt.Sprintf("a %d-byte", n)
}

// applyWelcome reads the awaited WELCOME, whose type byte t is read, and
// hands it to f.
func (r *Resumable) applyWelcome(t byte, rd io.Reader, f func(Welcome) error) error {
	if t != msgWelcome {
		err := fmt.Errorf("%w: message type %#x before the welcome", ErrResumeProtocol, t)
		r.Fail(err)
		return err
	}
	// One byte more than a WELCOME, to tell a longer message from one.
	b := make([]byte, welcomeSize+1)
	b[0] = t
	n, err := io.ReadFull(rd, b[1:])
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF: //nolint:errorlint // ReadFull's own, unwrapped: the message ended, the WebSocket did not
		b, err = b[:1+n], nil // UnmarshalBinary rejects the size
	case err == nil:
		err = fmt.Errorf("%w: welcome longer than %d bytes", ErrResumeProtocol, welcomeSize)
		r.Fail(err)
		return err
	default:
		// Cut short: a session that never learned its id cannot be
		// resumed, which the resume loop reports.
		return err
	}
	var w Welcome
	err = w.UnmarshalBinary(b)
	if err == nil {
		err = f(w)
	}
	if err != nil {
		r.Fail(err)
	}
	return err
}

func (r *Resumable) waitAttached() (*websocket.Conn, uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.ws == nil && r.err == nil {
		r.cond.Wait()
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	return r.ws, r.gen, nil
}

func (r *Resumable) kickAck() {
	select {
	case r.ackKick <- struct{}{}:
	default:
	}
}

// background sends acknowledgements (never from the reader, which must
// not block on a write while the peer does the same) and runs the grace
// clock while detached.
func (r *Resumable) background() {
	defer r.wg.Done()
	// At least a millisecond: under 8 ns the eighth was 0, a ticker that
	// panics, and a client's grace is the server's (its welcome's).
	step := max(min(time.Second, r.cfg.Grace/8), time.Millisecond)
	tick := time.NewTicker(step)
	defer tick.Stop()
	var clock *graceClock
	for {
		select {
		case <-r.done:
			return
		case <-r.ackKick:
		case <-tick.C:
		}
		r.mu.Lock()
		ws, gen, recv, need := r.ws, r.gen, r.recv, r.recv != r.ackSent
		detached := r.ws == nil && r.err == nil
		lostErr, attemptErr := r.lostErr, r.attemptErr
		if need && ws != nil {
			r.ackSent = recv
		}
		r.mu.Unlock()
		if !detached {
			clock = nil
		} else if clock == nil {
			clock = newGraceClock(step)
		} else if clock.tick() >= r.cfg.Grace {
			r.Fail(&NotResumedError{Within: r.cfg.Grace, Cause: lostErr, Last: attemptErr})
			return
		}
		if need && ws != nil {
			msg := binary.BigEndian.AppendUint64([]byte{msgAck}, recv)
			if err := ws.Write(noDeadline, websocket.MessageBinary, msg); err != nil {
				r.writeFailed(gen, ws, err)
			}
		}
	}
}
