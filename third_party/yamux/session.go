package yamux

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// Session is used to wrap a reliable ordered connection and to
// multiplex it into multiple streams.
type Session struct {
	// remoteGoAway indicates the remote side does
	// not want futher connections. Must be first for alignment.
	remoteGoAway int32

	// localGoAway indicates that we should stop
	// accepting futher connections. Must be first for alignment.
	localGoAway int32

	// nextStreamID is the next stream we should
	// send. This depends if we are a client/server.
	nextStreamID uint32

	// config holds our configuration
	config *Config

	// logger is used for our logs
	logger Logger

	// conn is the underlying connection
	conn io.ReadWriteCloser

	// bufRead is a buffered reader
	bufRead *bufio.Reader

	// recvScratch receives frames too small for a chunk of their own
	// (sandmux patch, see recvbuf.go); only the receive loop uses it.
	recvScratch []byte

	// rtt and windowGrowth serve receive-window auto-tuning (sandmux
	// patch, autotune.go).
	rtt          rttHolder
	windowGrowth atomic.Uint64

	// pings is used to track inflight pings
	pings    map[uint32]chan time.Time
	pingID   uint32
	pingLock sync.Mutex

	// streams maps a stream id to a stream, and inflight has an entry
	// for any outgoing stream that has not yet been established. Both are
	// protected by streamLock.
	streams  map[uint32]*Stream
	inflight map[uint32]struct{}
	// draining (sandmux patch, sessionwindow.go) keeps the streams that
	// left streams with bytes still unread, so that they still count
	// against MaxSessionReceiveWindow until read or garbage.
	draining   map[uint32]weak.Pointer[Stream]
	streamLock sync.Mutex

	// synCh acts like a semaphore. It is sized to the AcceptBacklog which
	// is assumed to be symmetric between the client and server. This allows
	// the client to avoid exceeding the backlog and instead blocks the open.
	synCh chan struct{}

	// acceptCh is used to pass ready streams to the client
	acceptCh chan *Stream

	// sendCh is used to mark a stream as ready to send,
	// or to send a header out directly.
	sendCh chan *sendReady
	// urgentCh (sandmux patch, lanes.go) carries the small frames that
	// go out before queued bulk data.
	urgentCh chan *sendReady

	// epoch and lastSent (sandmux patch, writeprogress.go): the send
	// loop's last completed write to the connection, in nanoseconds
	// since epoch (monotonic), by which a frame's write timeout tells a
	// stuck connection from a slow one.
	epoch    time.Time
	lastSent atomic.Int64

	// recvDoneCh is closed when recv() exits to avoid a race
	// between stream registration and stream shutdown
	recvDoneCh chan struct{}
	sendDoneCh chan struct{}

	// shutdown is used to safely close a session
	shutdown    bool
	shutdownErr error
	shutdownCh  chan struct{}
	// pongCh queues ping ids to answer (pongLoop).
	pongCh          chan uint32
	shutdownLock    sync.Mutex
	shutdownErrLock sync.Mutex
}

// sendReady is used to either mark a stream as ready
// or to directly send a header
type sendReady struct {
	Hdr  []byte
	Body []byte
	Err  chan error
	// state (sandmux patch): see the frame states below. Each move is a
	// compare-and-swap, so the send loop and a sender giving up agree
	// on who had the frame last.
	state atomic.Int32
	// sent is how much of Body was written; the send loop sets it before
	// it sends the result on Err.
	sent int
}

// A frame's states (sendReady.state). The send loop moves a frame from
// queued to taken (its header is being written), to body (its body is)
// and to done (its result is sent on Err). A sender giving up moves it
// from queued to withdrawn (nothing of it is written), or from taken to
// abandoned (it will have no result: a frame without a body, or a data
// frame whose body is then not written and whose session ends, since
// its header went out alone).
const (
	frameQueued int32 = iota
	frameTaken
	frameBody
	frameDone
	frameWithdrawn
	frameAbandoned
)

// withdraw takes a frame back that the send loop has not taken, and
// reports whether it did.
func (r *sendReady) withdraw() bool {
	return r.state.CompareAndSwap(frameQueued, frameWithdrawn)
}

// abandon gives up on a frame whose header is being written, and reports
// whether it did (not if its body is being written, or it is done).
func (r *sendReady) abandon() bool {
	return r.state.CompareAndSwap(frameTaken, frameAbandoned)
}

// finish sends the frame's result to its sender, unless the sender
// abandoned it.
func (r *sendReady) finish(err error) {
	if r.Err == nil {
		return
	}
	if r.state.CompareAndSwap(frameTaken, frameDone) || r.state.CompareAndSwap(frameBody, frameDone) {
		asyncSendErr(r.Err, err)
	}
}

// newSession is used to construct a new session
func newSession(config *Config, conn io.ReadWriteCloser, client bool) *Session {
	logger := config.Logger
	if logger == nil {
		logger = log.New(config.LogOutput, "", log.LstdFlags)
	}

	s := &Session{
		config:      config,
		logger:      logger,
		conn:        conn,
		bufRead:     bufio.NewReader(conn),
		recvScratch: make([]byte, chunkSize/2),
		pings:       make(map[uint32]chan time.Time),
		streams:     make(map[uint32]*Stream),
		inflight:    make(map[uint32]struct{}),
		draining:    make(map[uint32]weak.Pointer[Stream]),
		synCh:       make(chan struct{}, config.AcceptBacklog),
		acceptCh:    make(chan *Stream, config.AcceptBacklog),
		sendCh:      make(chan *sendReady, 64),
		urgentCh:    make(chan *sendReady, 64),
		recvDoneCh:  make(chan struct{}),
		sendDoneCh:  make(chan struct{}),
		shutdownCh:  make(chan struct{}),
		pongCh:      make(chan uint32, pongBacklog),
		epoch:       time.Now(),
	}
	if client {
		s.nextStreamID = 1
	} else {
		s.nextStreamID = 2
	}
	go s.recv()
	go s.send()
	go s.pongLoop()
	if config.EnableKeepAlive {
		go s.keepalive()
	}
	return s
}

// IsClosed does a safe check to see if we have shutdown
// RecvDone is closed once the session's receive loop has ended
// (sandmux patch): from then on, everything the peer sent before the end
// has been handled. A session that ended on a failed write (its
// connection closed under it as the peer's close arrived) may still be
// reading that close when IsClosed turns true.
func (s *Session) RecvDone() <-chan struct{} { return s.recvDoneCh }

func (s *Session) IsClosed() bool {
	select {
	case <-s.shutdownCh:
		return true
	default:
		return false
	}
}

// CloseChan returns a read-only channel which is closed as
// soon as the session is closed.
func (s *Session) CloseChan() <-chan struct{} {
	return s.shutdownCh
}

// NumStreams returns the number of currently open streams
func (s *Session) NumStreams() int {
	s.streamLock.Lock()
	num := len(s.streams)
	s.streamLock.Unlock()
	return num
}

// Open is used to create a new stream as a net.Conn
func (s *Session) Open() (net.Conn, error) {
	conn, err := s.OpenStream()
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// OpenStream is used to create a new stream
func (s *Session) OpenStream() (*Stream, error) {
	if s.IsClosed() {
		return nil, ErrSessionShutdown
	}
	if atomic.LoadInt32(&s.remoteGoAway) == 1 {
		return nil, ErrRemoteGoAway
	}

	// Block if we have too many inflight SYNs
	select {
	case s.synCh <- struct{}{}:
	case <-s.shutdownCh:
		return nil, ErrSessionShutdown
	}

GET_ID:
	// Get an ID, and check for stream exhaustion
	id := atomic.LoadUint32(&s.nextStreamID)
	if id >= math.MaxUint32-1 {
		return nil, ErrStreamsExhausted
	}
	if !atomic.CompareAndSwapUint32(&s.nextStreamID, id, id+2) {
		goto GET_ID
	}

	// Register the stream
	stream := newStream(s, id, streamInit)
	s.streamLock.Lock()
	s.startSpare(stream)
	s.streams[id] = stream
	s.inflight[id] = struct{}{}
	s.streamLock.Unlock()

	if s.config.StreamOpenTimeout > 0 {
		go s.setOpenTimeout(stream)
	}

	// Send the window update to create
	if err := stream.sendWindowUpdate(); err != nil {
		select {
		case <-s.synCh:
		default:
			s.logger.Printf("[ERR] yamux: aborted stream open without inflight syn semaphore")
		}
		return nil, err
	}
	return stream, nil
}

// setOpenTimeout implements a timeout for streams that are opened but not established.
// If the StreamOpenTimeout is exceeded we assume the peer is unable to ACK,
// and close the session.
// The number of running timers is bounded by the capacity of the synCh.
func (s *Session) setOpenTimeout(stream *Stream) {
	timer := time.NewTimer(s.config.StreamOpenTimeout)
	defer timer.Stop()

	select {
	case <-stream.establishCh:
		return
	case <-s.shutdownCh:
		return
	case <-timer.C:
		// Timeout reached while waiting for ACK.
		// Close the session to force connection re-establishment.
		s.logger.Printf("[ERR] yamux: aborted stream open (destination=%s): %v", s.RemoteAddr().String(), ErrTimeout.err)
		s.Close()
	}
}

// Accept is used to block until the next available stream
// is ready to be accepted.
func (s *Session) Accept() (net.Conn, error) {
	conn, err := s.AcceptStream()
	if err != nil {
		return nil, err
	}
	return conn, err
}

// AcceptStream is used to block until the next available stream
// is ready to be accepted.
func (s *Session) AcceptStream() (*Stream, error) {
	select {
	case stream := <-s.acceptCh:
		if err := stream.sendWindowUpdate(); err != nil {
			return nil, err
		}
		return stream, nil
	case <-s.shutdownCh:
		return nil, s.shutdownErr
	}
}

// AcceptStream is used to block until the next available stream
// is ready to be accepted.
func (s *Session) AcceptStreamWithContext(ctx context.Context) (*Stream, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case stream := <-s.acceptCh:
		if err := stream.sendWindowUpdate(); err != nil {
			return nil, err
		}
		return stream, nil
	case <-s.shutdownCh:
		return nil, s.shutdownErr
	}
}

// Close is used to close the session and all streams.
// Attempts to send a GoAway before closing the connection.
func (s *Session) Close() error {
	s.shutdownLock.Lock()
	defer s.shutdownLock.Unlock()

	if s.shutdown {
		return nil
	}
	s.shutdown = true

	s.shutdownErrLock.Lock()
	asked := s.shutdownErr == nil // not ending on an error (exitErr)
	if asked {
		s.shutdownErr = ErrSessionShutdown
	}
	s.shutdownErrLock.Unlock()

	close(s.shutdownCh)

	if asked {
		s.linger()
	}
	s.conn.Close()
	<-s.recvDoneCh

	s.streamLock.Lock()
	defer s.streamLock.Unlock()
	for _, stream := range s.streams {
		stream.forceClose()
		// sandmux patch: no more bytes will arrive, so the stream's
		// growth goes back now, or once its reader has drained it
		// (autotune.go), not only once it is garbage: a WindowBudget
		// shared with other sessions (budget.go) is short of it meanwhile.
		stream.closedForGrowth()
	}
	<-s.sendDoneCh
	return nil
}

// cut ends the session's connection with err as the session's cause,
// without waiting as Close does (sandmux patch): its loops fail on it and
// close the session. A write the connection holds after its close (a
// test's pipe) does not hold up the caller.
func (s *Session) cut(err error) {
	s.shutdownErrLock.Lock()
	if s.shutdownErr == nil {
		s.shutdownErr = err
	}
	s.shutdownErrLock.Unlock()
	s.conn.Close()
}

// exitErr is used to handle an error that is causing the
// session to terminate.
func (s *Session) exitErr(err error) {
	s.shutdownErrLock.Lock()
	if s.shutdownErr == nil {
		s.shutdownErr = err
	}
	s.shutdownErrLock.Unlock()
	s.Close()
}

// GoAway can be used to prevent accepting further
// connections. It does not close the underlying conn.
func (s *Session) GoAway() error {
	return s.waitForSend(s.goAway(goAwayNormal), nil)
}

// goAway is used to send a goAway message
func (s *Session) goAway(reason uint32) header {
	atomic.SwapInt32(&s.localGoAway, 1)
	hdr := header(make([]byte, headerSize))
	hdr.encode(typeGoAway, 0, 0, reason)
	return hdr
}

// Ping is used to measure the RTT response time
func (s *Session) Ping() (time.Duration, error) {
	// Get a channel for the ping: the receive loop puts the answer's
	// arrival in it.
	ch := make(chan time.Time, 1)

	// Get a new ping id, mark as pending
	s.pingLock.Lock()
	id := s.pingID
	s.pingID++
	s.pings[id] = ch
	s.pingLock.Unlock()

	// Send the ping request. The round trip is timed from before the
	// send to the answer's arrival (sandmux patch): upstream timed it
	// from the send's return to this goroutine's wake-up, and an answer
	// that arrived before this goroutine ran again (a busy scheduler, or
	// loopback) measured next to nothing, which as the smallest round
	// trip of the last minute kept windows from growing (autotune.go).
	// The time the ping waits in the send queue counts: it goes first
	// (lanes.go), and the smallest of a minute is kept.
	start := time.Now()
	hdr := header(make([]byte, headerSize))
	hdr.encode(typePing, flagSYN, 0, id)
	if err := s.waitForSend(hdr, nil); err != nil {
		return 0, err
	}

	// Wait for a response
	var arrived time.Time
	select {
	case arrived = <-ch:
	case <-time.After(s.config.ConnectionWriteTimeout):
		s.pingLock.Lock()
		delete(s.pings, id) // Ignore it if a response comes later.
		s.pingLock.Unlock()
		return 0, ErrTimeout
	case <-s.shutdownCh:
		return 0, ErrSessionShutdown
	}

	// Compute the RTT
	rtt := arrived.Sub(start)
	s.rtt.store(rtt)
	return rtt, nil
}

// keepalive is a long running goroutine that periodically does
// a ping to keep the connection alive.
func (s *Session) keepalive() {
	for {
		select {
		case <-time.After(s.config.KeepAliveInterval):
			_, err := s.Ping()
			if err != nil {
				if err != ErrSessionShutdown {
					s.logger.Printf("[ERR] yamux: keepalive failed: %v", err)
					s.exitErr(ErrKeepAliveTimeout)
				}
				return
			}
		case <-s.shutdownCh:
			return
		}
	}
}

// waitForSendErr waits to send a header, checking for a potential shutdown
func (s *Session) waitForSend(hdr header, body []byte) error {
	errCh := make(chan error, 1)
	_, err := s.waitForSendErr(hdr, body, errCh)
	return err
}

// waitForSendErr waits to send a header with optional data, checking for a
// potential shutdown. Since there's the expectation that sends can happen
// in a timely manner, we enforce the connection write timeout here.
//
// sandmux patch: it returns how much of body was written, and no frame
// is written after it returns. Upstream's sender that gave up (write
// timeout, shutdown) left its frame queued, with a copy of its body, so
// the send loop could still write it: its Write had returned 0 bytes and
// an error, and a caller that tried again sent the bytes twice. And the
// frame's result went on errCh, the stream's own channel, where the
// stream's next frame's sender took it for its own and returned before
// its frame was written (its caller then reused the buffer the send loop
// was about to write). A frame is now withdrawn if the send loop has not
// taken it. A data frame the connection took nothing of, or nothing more
// of, for the whole timeout ends the session: one stuck in its header is
// abandoned (its body is not written after it), one in its body waited
// for, since the write cannot be taken back. A frame without a body
// stuck in its write is abandoned, and the session left open, as
// upstream does.
func (s *Session) waitForSendErr(hdr header, body []byte, errCh chan error) (int, error) {
	t := timerPool.Get()
	timer := t.(*time.Timer)
	start := notYet // when the frame began to wait: see sendStalled
	timer.Reset(s.config.ConnectionWriteTimeout)
	defer func() {
		timer.Stop()
		select {
		case <-timer.C:
		default:
		}
		timerPool.Put(t)
	}()

	ready := &sendReady{Hdr: hdr, Body: body, Err: errCh}
	lane := s.laneFor(hdr, len(body))
queue:
	for {
		select {
		case lane <- ready:
			break queue
		case <-s.shutdownCh:
			return 0, ErrSessionShutdown
		case <-timer.C:
			if s.sendStalled(&start, timer) {
				return 0, ErrConnectionWriteTimeout
			}
		}
	}

	for {
		select {
		case err := <-errCh:
			return ready.result(len(body), err)
		case <-s.shutdownCh:
			// sandmux patch: a frame the send loop has taken is told how
			// its write ended, which Close (closing the connection)
			// bounds. Upstream, with the result and the shutdown both
			// ready, select chose at random, and a Write whose bytes had
			// gone out failed: a server's reply to a stream whose client
			// then finished and closed its session at once seemed lost,
			// and the server reset the target.
			if ready.withdraw() {
				return 0, ErrSessionShutdown
			}
			return ready.result(len(body), <-errCh)
		case <-timer.C:
			if !s.sendStalled(&start, timer) {
				continue
			}
			if ready.withdraw() {
				return 0, ErrConnectionWriteTimeout
			}
			// The send loop is writing this frame and the connection
			// took nothing for the whole timeout: it is stuck (its peer
			// stopped reading).
			if ready.abandon() {
				if body != nil {
					// Its header is out, or will be, without its body:
					// the session cannot go on.
					s.cut(ErrConnectionWriteTimeout)
				}
				return 0, ErrConnectionWriteTimeout
			}
			if ready.state.Load() == frameDone {
				return ready.result(len(body), <-errCh)
			}
			// Its body is being written, which cannot be taken back, nor
			// reported failed while it may still end well: end the
			// session, which ends the write, rather than wait for it
			// without bound, and report what it wrote.
			s.exitErr(ErrConnectionWriteTimeout)
			n, err := ready.result(len(body), <-errCh)
			if err != nil {
				err = ErrConnectionWriteTimeout
			}
			return n, err
		}
	}
}

// result is how much of a body of size bytes the frame's write sent, and
// its error, once err has come from the send loop.
func (r *sendReady) result(size int, err error) (int, error) {
	if err != nil {
		return r.sent, err
	}
	return size, nil
}

// sendNoWait does a send without waiting. Since there's the expectation that
// the send happens right here, we enforce the connection write timeout if we
// can't queue the header to be sent.
func (s *Session) sendNoWait(hdr header) error {
	t := timerPool.Get()
	timer := t.(*time.Timer)
	start := notYet // when the frame began to wait: see sendStalled
	timer.Reset(s.config.ConnectionWriteTimeout)
	defer func() {
		timer.Stop()
		select {
		case <-timer.C:
		default:
		}
		timerPool.Put(t)
	}()

	lane := s.laneFor(hdr, 0)
	for {
		select {
		case lane <- &sendReady{Hdr: hdr}:
			return nil
		case <-s.shutdownCh:
			return ErrSessionShutdown
		case <-timer.C:
			if s.sendStalled(&start, timer) {
				return ErrConnectionWriteTimeout
			}
		}
	}
}

// send is a long running goroutine that sends data
func (s *Session) send() {
	if err := s.sendLoop(); err != nil {
		s.exitErr(err)
	}
}

func (s *Session) sendLoop() error {
	defer close(s.sendDoneCh)
	l := newLanes(s)
	for {
		ready, ok := l.next()
		if !ok {
			return nil
		}
		if err := s.sendOne(ready); err != nil {
			return err
		}
	}
}

// sendOne writes one queued frame and reports the result to its sender.
// The body is written from the sender's own buffer: a frame taken here is
// not withdrawn, and its sender waits in waitForSendErr for this write to
// end before it may reuse the buffer. Upstream copied every body into a
// buffer of the send loop first: one more copy of every byte sent, and a
// buffer as large as the largest frame kept by every session that ever
// sent one. A write that blocks ends when the session closes its
// connection, which it does before waiting for this loop.
func (s *Session) sendOne(ready *sendReady) error {
	if !ready.state.CompareAndSwap(frameQueued, frameTaken) {
		return nil // withdrawn by its sender: none of it goes out
	}
	// Send a header if ready
	if ready.Hdr != nil {
		_, err := s.conn.Write(ready.Hdr)
		if err != nil {
			s.logger.Printf("[ERR] yamux: Failed to write header: %v", err)
			ready.finish(err)
			return err
		}
		s.noteSent()
	}

	if ready.Body != nil {
		if !ready.state.CompareAndSwap(frameTaken, frameBody) {
			// Abandoned by its sender, who was told none of it went:
			// the peer has its header without its body.
			return ErrConnectionWriteTimeout
		}
		n, err := s.writeBody(ready.Body)
		ready.sent = n
		if err != nil {
			s.logger.Printf("[ERR] yamux: Failed to write body: %v", err)
			ready.finish(err)
			return err
		}
	}

	// No error, successful send
	ready.finish(nil)
	return nil
}

// recv is a long running goroutine that accepts new data
func (s *Session) recv() {
	if err := s.recvLoop(); err != nil {
		s.exitErr(err)
	}
}

// Ensure that the index of the handler (typeData/typeWindowUpdate/etc) matches the message type
var (
	handlers = []func(*Session, header) error{
		typeData:         (*Session).handleStreamMessage,
		typeWindowUpdate: (*Session).handleStreamMessage,
		typePing:         (*Session).handlePing,
		typeGoAway:       (*Session).handleGoAway,
	}
)

// recvLoop continues to receive data until a fatal error is encountered
func (s *Session) recvLoop() error {
	defer close(s.recvDoneCh)
	hdr := header(make([]byte, headerSize))
	for {
		// Read the header
		if _, err := io.ReadFull(s.bufRead, hdr); err != nil {
			if err != io.EOF && !strings.Contains(err.Error(), "closed") && !strings.Contains(err.Error(), "reset by peer") {
				s.logger.Printf("[ERR] yamux: Failed to read header: %v", err)
			}
			return err
		}

		// Verify the version
		if hdr.Version() != protoVersion {
			s.logger.Printf("[ERR] yamux: Invalid protocol version: %d", hdr.Version())
			return ErrInvalidVersion
		}

		mt := hdr.MsgType()
		if mt < typeData || mt > typeGoAway {
			return ErrInvalidMsgType
		}

		if err := handlers[mt](s, hdr); err != nil {
			return err
		}
	}
}

// handleStreamMessage handles either a data or window update frame
func (s *Session) handleStreamMessage(hdr header) error {
	// Check for a new stream creation
	id := hdr.StreamID()
	flags := hdr.Flags()
	if flags&flagSYN == flagSYN {
		if err := s.incomingStream(id); err != nil {
			return err
		}
	}

	// Get the stream
	s.streamLock.Lock()
	stream := s.streams[id]
	s.streamLock.Unlock()

	// If we do not have a stream, likely we sent a RST
	if stream == nil {
		// Drain any data on the wire
		if hdr.MsgType() == typeData && hdr.Length() > 0 {
			s.logger.Printf("[WARN] yamux: Discarding data for stream: %d", id)
			if _, err := io.CopyN(ioutil.Discard, s.bufRead, int64(hdr.Length())); err != nil {
				s.logger.Printf("[ERR] yamux: Failed to discard data: %v", err)
				return nil
			}
		} else {
			s.logger.Printf("[WARN] yamux: frame for missing stream: %v", hdr)
		}
		return nil
	}

	// Check if this is a window update
	if hdr.MsgType() == typeWindowUpdate {
		if err := stream.incrSendWindow(hdr, flags); err != nil {
			if sendErr := s.sendNoWait(s.goAway(goAwayProtoErr)); sendErr != nil {
				s.logger.Printf("[WARN] yamux: failed to send go away: %v", sendErr)
			}
			return err
		}
		return nil
	}

	// Read the new data
	if err := stream.readData(hdr, flags, s.bufRead); err != nil {
		if sendErr := s.sendNoWait(s.goAway(goAwayProtoErr)); sendErr != nil {
			s.logger.Printf("[WARN] yamux: failed to send go away: %v", sendErr)
		}
		return err
	}
	return nil
}

// handlePing is invokde for a typePing frame
func (s *Session) handlePing(hdr header) error {
	flags := hdr.Flags()
	pingID := hdr.Length()

	// Check if this is a query, respond back in a separate context so we
	// don't interfere with the receiving thread blocking for the write.
	// One goroutine answers (pongLoop), and at most pongBacklog answers
	// wait for it: a goroutine per ping let a peer sending pings without
	// end grow goroutines and memory without bound (sandmux patch). A
	// ping beyond the backlog goes unanswered; an honest peer has one or
	// two outstanding.
	if flags&flagSYN == flagSYN {
		select {
		case s.pongCh <- pingID:
		default:
		}
		return nil
	}

	// Handle a response
	s.pingLock.Lock()
	ch := s.pings[pingID]
	if ch != nil {
		delete(s.pings, pingID)
		ch <- time.Now() // room for one, and only this answer sends
	}
	s.pingLock.Unlock()
	return nil
}

// pongBacklog bounds the ping answers waiting to be sent.
const pongBacklog = 16

// pongLoop answers pings queued by handlePing until the session ends.
func (s *Session) pongLoop() {
	for {
		select {
		case id := <-s.pongCh:
			hdr := header(make([]byte, headerSize))
			hdr.encode(typePing, flagACK, 0, id)
			if err := s.sendNoWait(hdr); err != nil {
				s.logger.Printf("[WARN] yamux: failed to send ping reply: %v", err)
			}
		case <-s.shutdownCh:
			return
		}
	}
}

// handleGoAway is invokde for a typeGoAway frame
func (s *Session) handleGoAway(hdr header) error {
	code := hdr.Length()
	switch code {
	case goAwayNormal:
		atomic.SwapInt32(&s.remoteGoAway, 1)
	case goAwayProtoErr:
		s.logger.Printf("[ERR] yamux: received protocol error go away")
		return fmt.Errorf("yamux protocol error")
	case goAwayInternalErr:
		s.logger.Printf("[ERR] yamux: received internal error go away")
		return fmt.Errorf("remote yamux internal error")
	default:
		s.logger.Printf("[ERR] yamux: received unexpected go away")
		return fmt.Errorf("unexpected go away received")
	}
	return nil
}

// incomingStream is used to create a new incoming stream
func (s *Session) incomingStream(id uint32) error {
	// Reject immediately if we are doing a go away
	if atomic.LoadInt32(&s.localGoAway) == 1 {
		hdr := header(make([]byte, headerSize))
		hdr.encode(typeWindowUpdate, flagRST, id, 0)
		return s.sendNoWait(hdr)
	}

	// Allocate a new stream
	stream := newStream(s, id, streamSYNReceived)

	// Nothing is sent under streamLock (sandmux patch): a send waits for
	// room in the send queue, up to the write timeout, and NumStreams,
	// closeStream and every other stream's open would wait behind it.
	s.streamLock.Lock()

	// Check if stream already exists
	if _, ok := s.streams[id]; ok {
		s.streamLock.Unlock()
		s.logger.Printf("[ERR] yamux: duplicate stream declared")
		if sendErr := s.sendNoWait(s.goAway(goAwayProtoErr)); sendErr != nil {
			s.logger.Printf("[WARN] yamux: failed to send go away: %v", sendErr)
		}
		return ErrDuplicateStream
	}

	// Register the stream
	s.startSpare(stream)
	s.streams[id] = stream

	// Check if we've exceeded the backlog
	select {
	case s.acceptCh <- stream:
		s.streamLock.Unlock()
		return nil
	default:
		// Backlog exceeded! RST the stream
		delete(s.streams, id)
		s.streamLock.Unlock()
		// sandmux patch: its spare start (startSpare) goes back to the
		// growth budget now; nothing else will close it, and waiting for
		// it to be garbage leaves the budget short meanwhile.
		stream.closedForGrowth()
		s.logger.Printf("[WARN] yamux: backlog exceeded, forcing connection reset")
		hdr := header(make([]byte, headerSize))
		hdr.encode(typeWindowUpdate, flagRST, id, 0)
		return s.sendNoWait(hdr)
	}
}

// closeStream is used to close a stream once both sides have
// issued a close. If there was an in-flight SYN and the stream
// was not yet established, then this will give the credit back.
func (s *Session) closeStream(id uint32) {
	s.streamLock.Lock()
	if _, ok := s.inflight[id]; ok {
		select {
		case <-s.synCh:
		default:
			s.logger.Printf("[ERR] yamux: SYN tracking out of sync")
		}
	}
	stream := s.streams[id]
	delete(s.streams, id)
	if stream != nil {
		s.keepDraining(stream)
	}
	s.streamLock.Unlock()
	if stream != nil {
		stream.closedForGrowth()
	}
}

// establishStream is used to mark a stream that was in the
// SYN Sent state as established.
func (s *Session) establishStream(id uint32) {
	s.streamLock.Lock()
	if _, ok := s.inflight[id]; ok {
		delete(s.inflight, id)
	} else {
		s.logger.Printf("[ERR] yamux: established stream without inflight SYN (no tracking entry)")
	}
	select {
	case <-s.synCh:
	default:
		s.logger.Printf("[ERR] yamux: established stream without inflight SYN (didn't have semaphore)")
	}
	s.streamLock.Unlock()
}
