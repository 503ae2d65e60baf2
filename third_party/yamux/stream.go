package yamux

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

type streamState int

const (
	streamInit streamState = iota
	streamSYNSent
	streamSYNReceived
	streamEstablished
	streamLocalClose
	streamRemoteClose
	streamClosed
	streamReset
)

// Stream is used to represent a logical stream
// within a session.
//
// Lock order (sandmux patch): controlHdrLock or sendLock (or sendLock
// and then controlHdrLock, in Close), then stateLock, then recvLock;
// nothing is sent or waited for under stateLock or recvLock. The
// session's streamLock is taken with neither of the last two held
// (sendWindowUpdate holds controlHdrLock for it), except by processFlags,
// which only the receive loop runs (stateLock, then streamLock in
// closeStream and establishStream), and by Session.Close (streamLock,
// then stateLock), which waits for the receive loop to end first.
type Stream struct {
	recvWindow uint32
	sendWindow uint32

	id      uint32
	session *Session

	state     streamState
	stateLock sync.Mutex

	recvBuf  recvQueue   // sandmux patch: was *bytes.Buffer
	tuner    windowTuner // sandmux patch: receive-window auto-tuning
	recvLock sync.Mutex

	controlHdr     header
	controlErr     chan error
	controlHdrLock sync.Mutex

	sendHdr  header
	sendErr  chan error
	sendLock sync.Mutex

	recvNotifyCh chan struct{}
	sendNotifyCh chan struct{}

	readDeadline  atomic.Value // time.Time
	writeDeadline atomic.Value // time.Time

	// establishCh is notified if the stream is established or being closed.
	establishCh chan struct{}

	// closeTimer is set with stateLock held to honor the StreamCloseTimeout
	// setting on Session.
	closeTimer *time.Timer

	// remoteFin (sandmux patch, under stateLock) records that the peer's
	// FIN arrived. A stream forced closed (the session ended, or the close
	// timeout fired) reads io.EOF too, and only this tells a complete
	// stream from a cut one (RemoteFinished).
	remoteFin bool
}

// newStream is used to construct a new stream within
// a given session for an ID
func newStream(session *Session, id uint32, state streamState) *Stream {
	s := &Stream{
		id:           id,
		session:      session,
		state:        state,
		controlHdr:   header(make([]byte, headerSize)),
		controlErr:   make(chan error, 1),
		sendHdr:      header(make([]byte, headerSize)),
		sendErr:      make(chan error, 1),
		recvWindow:   initialStreamWindow,
		sendWindow:   initialStreamWindow,
		recvNotifyCh: make(chan struct{}, 1),
		sendNotifyCh: make(chan struct{}, 1),
		establishCh:  make(chan struct{}, 1),
	}
	s.tuner.max = session.config.startWindow()
	s.tuner.held.Store(int64(initialStreamWindow))
	s.tuner.epochStart = time.Now()
	s.readDeadline.Store(time.Time{})
	s.writeDeadline.Store(time.Time{})
	return s
}

// Session returns the associated stream session
func (s *Stream) Session() *Session {
	return s.session
}

// StreamID returns the ID of this stream
func (s *Stream) StreamID() uint32 {
	return s.id
}

// Read is used to read from the stream
func (s *Stream) Read(b []byte) (n int, err error) {
	return s.recv(func(q *recvQueue) int { return q.Read(b) })
}

// ReadChunk is Read without the copy (sandmux patch): it returns the
// oldest received bytes in the buffer they were received into, at most
// one frame's worth, and a token to give back with ReleaseChunk once they
// are used. The bytes belong to the caller until then; the receive window
// counts them as read. Errors are Read's, and as from Read, bytes may come
// with one (a failed window update): use them first.
func (s *Stream) ReadChunk() (b []byte, token *[]byte, err error) {
	_, err = s.recv(func(q *recvQueue) int {
		token, b = q.take()
		return len(b)
	})
	return b, token, err
}

// ReleaseChunk gives back what ReadChunk returned, for reuse. The bytes
// must not be used after it. A nil token is ignored.
func (s *Stream) ReleaseChunk(token *[]byte) {
	if token != nil {
		releaseChunk(token)
	}
}

// recv waits, as Read does, until the stream has data, an end or an error,
// and runs take under recvLock to consume data; take returns the bytes it
// consumed, which are counted as read and may be granted back to the peer.
func (s *Stream) recv(take func(*recvQueue) int) (n int, err error) {
	defer asyncNotify(s.recvNotifyCh)
START:

	// If the stream is closed and there's no data buffered, return EOF
	s.stateLock.Lock()
	switch s.state {
	case streamLocalClose:
		// LocalClose only prohibits further local writes. Handle reads normally.
	case streamRemoteClose:
		fallthrough
	case streamClosed:
		s.recvLock.Lock()
		if s.recvBuf.Len() == 0 {
			s.recvLock.Unlock()
			s.stateLock.Unlock()
			return 0, io.EOF
		}
		s.recvLock.Unlock()
	case streamReset:
		// sandmux patch: what the peer sent before its reset is read
		// first, as from a TCP socket; the reset follows it, or the end
		// of the data where the peer's FIN came before its reset (its
		// data was whole; only writes fail). No window update: the
		// stream is gone at the peer.
		s.recvLock.Lock()
		if s.recvBuf.Len() == 0 {
			s.recvLock.Unlock()
			fin := s.remoteFin
			s.stateLock.Unlock()
			if fin {
				return 0, io.EOF
			}
			return 0, ErrConnectionReset
		}
		n = take(&s.recvBuf)
		s.noteUnread() // the growth goes back once drained (autotune.go)
		s.recvLock.Unlock()
		s.stateLock.Unlock()
		return n, nil
	}
	s.stateLock.Unlock()

	// If there is no data available, block
	s.recvLock.Lock()
	if s.recvBuf.Len() == 0 {
		s.recvLock.Unlock()
		goto WAIT
	}

	// Read any bytes
	n = take(&s.recvBuf)
	s.tuner.read += uint64(n)
	s.noteUnread()
	s.recvLock.Unlock()

	// Send a window update potentially
	err = s.sendWindowUpdate()
	if err == ErrSessionShutdown || err != nil && s.RemoteFinished() {
		// sandmux patch: a stream whose FIN has arrived needs no more
		// window, and its reader gets the rest of its data and then EOF,
		// whatever became of the update. Upstream returned the update's
		// failure with the bytes: such a stream read the connection's
		// write error instead of the rest when its session ended (its
		// peer closed it right after a finished upload), and a server
		// passed a reset on to the target. For a stream still open the
		// failure is the cut it is, and its cause.
		err = nil
	}
	return n, err

WAIT:
	// sandmux patch: a session that is shutting down ends the wait, which
	// upstream only went round again: until Close had closed the
	// connection and force-closed the streams, every reader waiting for
	// data spun through START and this select, and a connection whose
	// close takes seconds (sandmux's resumable one sends END and waits
	// for its peer's close) had 50 of them starve the goroutines that
	// close had to wait for, past a server's shutdown timeout. START has
	// been checked since the shutdown, so what was buffered, and the end
	// of a stream that was finished, are read first.
	if s.session.IsClosed() {
		return 0, ErrSessionShutdown
	}
	var timeout <-chan time.Time
	var timer *time.Timer
	readDeadline := s.readDeadline.Load().(time.Time)
	if !readDeadline.IsZero() {
		delay := time.Until(readDeadline)
		timer = time.NewTimer(delay)
		timeout = timer.C
	}
	select {
	case <-s.session.shutdownCh:
	case <-s.recvNotifyCh:
	case <-timeout:
		return 0, ErrTimeout
	}
	if timer != nil {
		if !timer.Stop() {
			<-timeout
		}
	}
	goto START
}

// Write is used to write to the stream
func (s *Stream) Write(b []byte) (n int, err error) {
	s.sendLock.Lock()
	defer s.sendLock.Unlock()
	total := 0
	for total < len(b) {
		n, err := s.write(b[total:])
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// write is used to write to the stream, may return on
// a short write.
func (s *Stream) write(b []byte) (n int, err error) {
	var flags uint16
	var max uint32
	var body []byte
START:
	s.stateLock.Lock()
	switch s.state {
	case streamLocalClose:
		fallthrough
	case streamClosed:
		s.stateLock.Unlock()
		return 0, ErrStreamClosed
	case streamReset:
		s.stateLock.Unlock()
		return 0, ErrConnectionReset
	}
	s.stateLock.Unlock()

	// If there is no data available, block
	window := atomic.LoadUint32(&s.sendWindow)
	if window == 0 {
		goto WAIT
	}

	// Determine the flags if any
	flags = s.sendFlags()

	// Send up to our send window
	max = min(window, uint32(len(b)))
	body = b[:max]

	// Send the header. sandmux patch: the bytes reported are those
	// written, also with an error, and no more of them are written after
	// waitForSendErr returns; a header abandoned in its write (see
	// waitForSendErr) may still be being written, though.
	s.sendHdr.encode(typeData, flags, s.id, max)
	n, err = s.session.waitForSendErr(s.sendHdr, body, s.sendErr)
	if errors.Is(err, ErrSessionShutdown) || errors.Is(err, ErrConnectionWriteTimeout) {
		s.sendHdr = header(make([]byte, headerSize))
	}

	// Reduce our send window
	if n > 0 {
		atomic.AddUint32(&s.sendWindow, ^uint32(n-1))
	}
	return n, err

WAIT:
	// sandmux patch: as in recv, a session shutting down ends the wait
	// for window instead of spinning until its streams are closed.
	if s.session.IsClosed() {
		return 0, ErrSessionShutdown
	}
	var timeout <-chan time.Time
	var timer *time.Timer
	writeDeadline := s.writeDeadline.Load().(time.Time)
	if !writeDeadline.IsZero() {
		delay := time.Until(writeDeadline)
		timer = time.NewTimer(delay)
		timeout = timer.C
	}
	select {
	case <-s.session.shutdownCh:
	case <-s.sendNotifyCh:
	case <-timeout:
		return 0, ErrTimeout
	}
	if timer != nil {
		if !timer.Stop() {
			<-timeout
		}
	}
	goto START
}

// sendFlags determines any flags that are appropriate
// based on the current stream state
func (s *Stream) sendFlags() uint16 {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	var flags uint16
	switch s.state {
	case streamInit:
		flags |= flagSYN
		s.state = streamSYNSent
	case streamSYNReceived:
		flags |= flagACK
		s.state = streamEstablished
	}
	return flags
}

// sendWindowUpdate potentially sends a window update enabling
// further writes to take place. Must be invoked with the lock.
func (s *Stream) sendWindowUpdate() error {
	s.controlHdrLock.Lock()
	defer s.controlHdrLock.Unlock()

	// Determine the flags if any. sandmux patch: before recvLock, not
	// inside it as upstream, since Read takes recvLock inside stateLock:
	// two Reads on one stream deadlocked, each holding the lock the other
	// wanted, and the receive loop and Close waited behind them.
	flags := s.sendFlags()

	// Determine the delta update. sandmux patch: against the stream's
	// auto-tuned window (autotune.go), not the configured maximum.
	s.recvLock.Lock()
	s.tune()
	max := s.tuner.max
	delta := s.grantFor(max)

	// Check if we can omit the update. sandmux: at an eighth of the window,
	// not half, so a sender is never more than an eighth short of a full
	// window in flight (with half, it averaged three quarters: a quarter
	// less throughput wherever the window is the limit, as over a WAN).
	if delta < (max/8) && flags == 0 {
		s.recvLock.Unlock()
		return nil
	}

	// sandmux patch: within the session's receive window
	// (sessionwindow.go), asked without recvLock, which the reader and the
	// receive loop may take meanwhile, so the grant is worked out again.
	if s.session.config.MaxSessionReceiveWindow > 0 && max > initialStreamWindow {
		s.recvLock.Unlock()
		share := s.shareOf(max)
		s.recvLock.Lock()
		max = share
		delta = s.grantFor(max)
		if delta < (max/8) && flags == 0 {
			s.recvLock.Unlock()
			return nil
		}
	}

	// Update our window
	s.recvWindow += delta
	s.noteHeld()
	s.recvLock.Unlock()

	// Send the header
	s.controlHdr.encode(typeWindowUpdate, flags, s.id, delta)
	if _, err := s.session.waitForSendErr(s.controlHdr, nil, s.controlErr); err != nil {
		if errors.Is(err, ErrSessionShutdown) || errors.Is(err, ErrConnectionWriteTimeout) {
			// Message left in ready queue, header re-use is unsafe.
			s.controlHdr = header(make([]byte, headerSize))
		}
		return err
	}
	return nil
}

// sendClose is used to send a FIN
func (s *Stream) sendClose() error {
	s.controlHdrLock.Lock()
	defer s.controlHdrLock.Unlock()

	flags := s.sendFlags()
	flags |= flagFIN
	s.controlHdr.encode(typeWindowUpdate, flags, s.id, 0)
	if _, err := s.session.waitForSendErr(s.controlHdr, nil, s.controlErr); err != nil {
		if errors.Is(err, ErrSessionShutdown) || errors.Is(err, ErrConnectionWriteTimeout) {
			// Message left in ready queue, header re-use is unsafe.
			s.controlHdr = header(make([]byte, headerSize))
		}
		return err
	}
	return nil
}

// Close is used to close the stream
func (s *Stream) Close() error {
	closeStream := false
	s.stateLock.Lock()
	switch s.state {
	// Opened means we need to signal a close
	case streamSYNSent:
		fallthrough
	case streamSYNReceived:
		fallthrough
	case streamEstablished:
		s.state = streamLocalClose
		goto SEND_CLOSE

	case streamLocalClose:
	case streamRemoteClose:
		s.state = streamClosed
		closeStream = true
		goto SEND_CLOSE

	case streamClosed:
	case streamReset:
	default:
		panic("unhandled state")
	}
	s.stateLock.Unlock()
	return nil
SEND_CLOSE:
	// This shouldn't happen (the more realistic scenario to cancel the
	// timer is via processFlags) but just in case this ever happens, we
	// cancel the timer to prevent dangling timers.
	if s.closeTimer != nil {
		s.closeTimer.Stop()
		s.closeTimer = nil
	}

	// If we have a StreamCloseTimeout set we start the timeout timer.
	// We do this only if we're not already closing the stream since that
	// means this was a graceful close.
	//
	// This prevents memory leaks if one side (this side) closes and the
	// remote side poorly behaves and never responds with a FIN to complete
	// the close. After the specified timeout, we clean our resources up no
	// matter what.
	if !closeStream && s.session.config.StreamCloseTimeout > 0 {
		s.closeTimer = time.AfterFunc(
			s.session.config.StreamCloseTimeout, s.closeTimeout)
	}

	s.stateLock.Unlock()
	// sandmux patch: the FIN waits for a Write that had checked the
	// state before it changed, so no data frame goes out after the FIN.
	// Upstream queued the FIN at once, and such a Write could queue its
	// frame behind it and succeed, though the peer, if its side was
	// closed too, dropped the bytes. A Write waiting for window is woken
	// first and sees the close; one whose frame is queued holds sendLock
	// until its frame is written (or fails, within the write timeout).
	asyncNotify(s.sendNotifyCh)
	s.sendLock.Lock()
	s.sendClose()
	s.sendLock.Unlock()
	s.notifyWaiting()
	if closeStream {
		s.session.closeStream(s.id)
	}
	return nil
}

// closeTimeout is called after StreamCloseTimeout during a close to
// close this stream.
func (s *Stream) closeTimeout() {
	// Close our side forcibly
	s.forceClose()

	// Free the stream from the session map
	s.session.closeStream(s.id)

	// Send a RST so the remote side closes too.
	s.sendLock.Lock()
	defer s.sendLock.Unlock()
	hdr := header(make([]byte, headerSize))
	hdr.encode(typeWindowUpdate, flagRST, s.id, 0)
	_ = s.session.sendNoWait(hdr)
}

// Abort resets the stream at once (sandmux patch): it is freed with any
// data it holds unread, and the peer gets a RST. Close instead keeps a
// stream, and whatever its peer still sends, until the peer's FIN or
// StreamCloseTimeout, which a peer that never finishes can make minutes.
func (s *Stream) Abort() {
	s.stateLock.Lock()
	if s.state == streamClosed || s.state == streamReset {
		s.stateLock.Unlock()
		return
	}
	if s.closeTimer != nil {
		s.closeTimer.Stop()
		s.closeTimer = nil
	}
	// Closed under the same lock as the check: a Close racing this one
	// finds nothing left to do, and starts no close timer.
	s.state = streamClosed
	s.stateLock.Unlock()
	s.notifyWaiting()
	s.session.closeStream(s.id)
	// What it holds unread is dropped now, as TCP drops a reset socket's
	// receive queue: its chunks go back to their pool, and its window
	// growth to the session and a WindowBudget it shares (autotune.go),
	// not once the stream is garbage. A reader still in Read gets EOF.
	s.recvLock.Lock()
	s.recvBuf.reset()
	s.noteUnread()
	s.recvLock.Unlock()
	s.sendLock.Lock()
	defer s.sendLock.Unlock()
	hdr := header(make([]byte, headerSize))
	hdr.encode(typeWindowUpdate, flagRST, s.id, 0)
	_ = s.session.sendNoWait(hdr)
}

// RemoteFinished reports whether the peer ended its side of the stream
// with a FIN (sandmux patch). io.EOF from a stream that is not
// RemoteFinished means the stream was cut: its session ended, or the
// close timeout fired.
func (s *Stream) RemoteFinished() bool {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	return s.remoteFin
}

// forceClose is used for when the session is exiting
func (s *Stream) forceClose() {
	s.stateLock.Lock()
	s.state = streamClosed
	s.stateLock.Unlock()
	s.notifyWaiting()
}

// processFlags is used to update the state of the stream
// based on set flags, if any. Lock must be held
func (s *Stream) processFlags(flags uint16) error {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()

	// Close the stream without holding the state lock
	closeStream := false
	defer func() {
		if closeStream {
			if s.closeTimer != nil {
				// Stop our close timeout timer since we gracefully closed
				s.closeTimer.Stop()
			}

			s.session.closeStream(s.id)
		}
	}()

	// sandmux patch: the close timeout counts from the peer's last frame,
	// not from the local FIN, so a peer still sending (a download after
	// its request was half-closed) is not cut off while it is busy. Only a
	// timer that had not fired yet is moved.
	if s.closeTimer != nil && s.closeTimer.Stop() {
		s.closeTimer.Reset(s.session.config.StreamCloseTimeout)
	}

	if flags&flagACK == flagACK {
		if s.state == streamSYNSent {
			s.state = streamEstablished
		}
		asyncNotify(s.establishCh)
		s.session.establishStream(s.id)
	}
	if flags&flagFIN == flagFIN {
		switch s.state {
		case streamSYNSent:
			fallthrough
		case streamSYNReceived:
			fallthrough
		case streamEstablished:
			s.state = streamRemoteClose
			s.remoteFin = true
			s.notifyWaiting()
		case streamLocalClose:
			s.state = streamClosed
			s.remoteFin = true
			closeStream = true
			s.notifyWaiting()
		case streamClosed, streamReset:
			// sandmux patch: this side ended the stream at once (Abort,
			// or the close timeout) as the peer's FIN was already on its
			// way to it; the FIN is moot, not a protocol error that ends
			// the session.
		default:
			s.session.logger.Printf("[ERR] yamux: unexpected FIN flag in state %d", s.state)
			return ErrUnexpectedFlag
		}
	}
	if flags&flagRST == flagRST {
		s.state = streamReset
		closeStream = true
		s.notifyWaiting()
	}
	return nil
}

// notifyWaiting notifies all the waiting channels
func (s *Stream) notifyWaiting() {
	asyncNotify(s.recvNotifyCh)
	asyncNotify(s.sendNotifyCh)
	asyncNotify(s.establishCh)
}

// incrSendWindow updates the size of our send window
func (s *Stream) incrSendWindow(hdr header, flags uint16) error {
	if err := s.processFlags(flags); err != nil {
		return err
	}

	// Increase window, unblock a sender
	atomic.AddUint32(&s.sendWindow, hdr.Length())
	asyncNotify(s.sendNotifyCh)
	return nil
}

// readData is used to handle a data frame
func (s *Stream) readData(hdr header, flags uint16, conn io.Reader) error {
	if err := s.processFlags(flags); err != nil {
		return err
	}

	// Check that our recv window is not exceeded
	length := hdr.Length()
	if length == 0 {
		return nil
	}

	s.recvLock.Lock()
	if length > s.recvWindow {
		s.session.logger.Printf("[ERR] yamux: receive window exceeded (stream: %d, remain: %d, recv: %d)", s.id, s.recvWindow, length)
		s.recvLock.Unlock()
		return ErrRecvWindowExceeded
	}
	s.recvLock.Unlock()

	// sandmux patch: the frame is read without recvLock (upstream holds
	// it), so that a frame still arriving, which on a resumable transport
	// can mean for the length of an outage, does not hold up the stream's
	// reader: its deadline and Close still end a Read. Only this goroutine
	// lowers recvWindow, so the check above still holds; a window update
	// computed meanwhile counts the frame as still outstanding, so it
	// grants nothing twice. The frame goes into a queue of chunks, not a
	// bytes.Buffer (recvbuf.go); bytes read before an error are kept, as
	// upstream's io.Copy kept them.
	var (
		err   error
		got   []*[]byte
		small []byte
	)
	if int(length) >= chunkSize/2 {
		got, err = readChunks(conn, int(length))
	} else {
		var n int
		n, err = io.ReadFull(conn, s.session.recvScratch[:length])
		small = s.session.recvScratch[:n]
	}
	s.recvLock.Lock()
	for _, c := range got {
		s.recvBuf.appendChunk(c)
	}
	s.recvBuf.appendSmall(small)
	if err != nil {
		s.session.logger.Printf("[ERR] yamux: Failed to read stream data: %v", err)
		s.recvLock.Unlock()
		return err
	}

	// Decrement the receive window
	s.recvWindow -= length
	s.noteUnread()
	s.recvLock.Unlock()

	// Unblock any readers
	asyncNotify(s.recvNotifyCh)
	return nil
}

// SetDeadline sets the read and write deadlines
func (s *Stream) SetDeadline(t time.Time) error {
	if err := s.SetReadDeadline(t); err != nil {
		return err
	}
	if err := s.SetWriteDeadline(t); err != nil {
		return err
	}
	return nil
}

// SetReadDeadline sets the deadline for blocked and future Read calls.
func (s *Stream) SetReadDeadline(t time.Time) error {
	s.readDeadline.Store(t)
	asyncNotify(s.recvNotifyCh)
	return nil
}

// SetWriteDeadline sets the deadline for blocked and future Write calls
func (s *Stream) SetWriteDeadline(t time.Time) error {
	s.writeDeadline.Store(t)
	asyncNotify(s.sendNotifyCh)
	return nil
}

// Shrink is used to compact the amount of buffers utilized
// This is useful when using Yamux in a connection pool to reduce
// the idle memory utilization.
func (s *Stream) Shrink() {
	s.recvLock.Lock()
	if s.recvBuf.Len() == 0 {
		s.recvBuf.reset()
	}
	s.recvLock.Unlock()
}
