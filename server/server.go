package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/internal/logflood"
	"github.com/sandmux/sandmux/mux"
)

// Server upgrades WebSocket requests and serves sandmux sessions and raw
// connections. It is an http.Handler; Close ends every session it serves
// and waits for them. Serve it on a mux.Listener with mux.ConnContext as
// the http.Server's ConnContext to cut its syscalls per frame.
type Server struct {
	cfg   Config
	log   *slog.Logger
	allow allowlist
	// logLimit limits the lines of log marked logflood.Limit; Close
	// says what it dropped.
	logLimit *logflood.Limiter
	// sessionLines is sessionLineBurst, lower in tests.
	sessionLines atomic.Int64

	ctx    context.Context // parent of every connection's lifetime
	cancel context.CancelFunc

	// draining is set by Shutdown: new sessions and streams are refused.
	draining atomic.Bool
	// rawActive counts raw-mode connections, which Shutdown waits for
	// as for streams.
	rawActive atomic.Int64
	// refusing counts the refused streams of every session waiting for
	// their peer's FIN (serveMux's finishing).
	refusing atomic.Int64

	mu       sync.Mutex
	closed   bool
	sessions map[*mux.Session]struct{}
	raws     map[*websocket.Conn]struct{} // raw-mode connections, for Close
	slots    int                          // WebSockets counted against MaxSessions
	// resumeSlots counts resume upgrades, which take no slot: a real
	// resume's session already holds one. They are capped at
	// MaxSessions as well, so upgrades merely claiming to resume cannot
	// pile up without bound.
	resumeSlots int
	// resumables holds every live sandmux.v2 session by id, attached or
	// not, so a client can resume it.
	resumables map[[mux.SessionIDSize]byte]*detached
	wg         sync.WaitGroup // one per live ServeHTTP upgrade

	hs handshakes // connections in their handshake (MaxHandshakes)

	stats counters
}

// counters are the server's running totals.
type counters struct {
	sessionsTotal atomic.Int64 // WebSockets upgraded, either mode
	rawTotal      atomic.Int64
	streamsTotal  atomic.Int64
	streamsActive atomic.Int64
	resumes       atomic.Int64
	// Refusals by reason.
	refusedSessions, refusedStreams atomic.Int64
	refusedAuth, refusedProtocol    atomic.Int64
	refusedTargets, targetErrors    atomic.Int64
	refusedResumes                  atomic.Int64
	refusedHandshakes               atomic.Int64
	// Bytes of sandmux sessions that have ended; live ones are added by
	// Stats.
	bytesIn, bytesOut atomic.Int64
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	// Sessions is the number of WebSocket connections upgraded so far.
	Sessions int64
	// RawSessions is how many of those ran in raw (websocat) mode.
	RawSessions int64
	// ActiveRaw is the number of raw-mode connections open now (each a
	// WebSocket spliced to the default target); ActiveSessions does not
	// count them. Their bytes are not counted: the splice moves them
	// with no counter on its way.
	ActiveRaw int
	// ActiveSessions is the number of sandmux sessions open now.
	ActiveSessions int
	// Streams is the number of streams opened so far; ActiveStreams, now.
	Streams, ActiveStreams int64
	// Resumes counts sessions resumed on a new WebSocket.
	Resumes int64
	// RefusedSessions and RefusedStreams count refusals at the limits.
	RefusedSessions, RefusedStreams int64
	// RefusedAuth counts upgrades refused for a missing or wrong token;
	// RefusedProtocol, those offering only unknown sandmux versions.
	RefusedAuth, RefusedProtocol int64
	// RefusedTargets counts streams asking for a target not allowed;
	// TargetErrors, streams whose target could not be connected.
	RefusedTargets, TargetErrors int64
	// RefusedResumes counts resumes refused for an unknown session or a
	// wrong resume secret or credentials.
	RefusedResumes int64
	// RefusedHandshakes counts connections refused at MaxHandshakes
	// (answered 503, closed, or closed to make way for a newcomer).
	RefusedHandshakes int64
	// BytesIn and BytesOut are what sandmux sessions (not raw ones)
	// received and sent on their WebSockets, live sessions included.
	BytesIn, BytesOut int64
	// ReceiveBufferInUse is how much of MaxReceiveBuffer streams' grown
	// windows hold now; ReceiveBufferLimit is MaxReceiveBuffer.
	ReceiveBufferInUse, ReceiveBufferLimit uint64
	// ResumeBufferInUse is how many bytes resumable sessions hold sent
	// and not yet acknowledged; ResumeBufferLimit is MaxResumeBuffer.
	ResumeBufferInUse, ResumeBufferLimit uint64
}

// New validates cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	allow, err := newAllowlist(cfg.Target, cfg.Allow)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	log := cfg.Logger
	if log == nil {
		log = mux.DiscardLogger()
	}
	// Lines a peer can repeat at will (refusals, bad requests) are
	// marked logflood.Limit: a flood of them is cut to a few a minute,
	// and counted in a line of its own.
	limit := logflood.Wrap(log)
	// Shared by every session, counting even with no bound, for Stats.
	cfg.Mux.WindowBudget = mux.NewWindowBudget(cfg.MaxReceiveBuffer)
	cfg.Resume.Budget = mux.NewReplayBudget(cfg.MaxResumeBuffer)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, log: limit.Logger(), logLimit: limit, allow: allow,
		ctx: ctx, cancel: cancel,
		sessions:   make(map[*mux.Session]struct{}),
		raws:       make(map[*websocket.Conn]struct{}),
		resumables: make(map[[mux.SessionIDSize]byte]*detached),
		hs:         handshakes{max: cfg.MaxHandshakes, answerLimit: busyAnswerLimit, conns: make(map[net.Conn]*hsConn)},
	}
	s.sessionLines.Store(sessionLineBurst)
	return s, nil
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	active, activeRaw := len(s.sessions), len(s.raws)
	in, out := s.stats.bytesIn.Load(), s.stats.bytesOut.Load()
	for sess := range s.sessions {
		// Bytes, not Stats: Stats counts streams under yamux's stream
		// lock, which a session stalled by its peer can hold, and every
		// upgrade waits for s.mu meanwhile.
		i, o := sess.Bytes()
		in += i
		out += o
	}
	s.mu.Unlock()
	return Stats{
		RefusedAuth:        s.stats.refusedAuth.Load(),
		RefusedProtocol:    s.stats.refusedProtocol.Load(),
		RefusedTargets:     s.stats.refusedTargets.Load(),
		TargetErrors:       s.stats.targetErrors.Load(),
		RefusedResumes:     s.stats.refusedResumes.Load(),
		RefusedHandshakes:  s.stats.refusedHandshakes.Load(),
		BytesIn:            in,
		BytesOut:           out,
		ReceiveBufferInUse: s.cfg.Mux.WindowBudget.InUse(),
		ReceiveBufferLimit: s.cfg.MaxReceiveBuffer,
		ResumeBufferInUse:  s.cfg.Resume.Budget.InUse(),
		ResumeBufferLimit:  s.cfg.MaxResumeBuffer,
		// Raw first: both count up in the order sessions, raw, so this
		// never reports more raw sessions than sessions.
		RawSessions:     s.stats.rawTotal.Load(),
		Sessions:        s.stats.sessionsTotal.Load(),
		ActiveSessions:  active,
		ActiveRaw:       activeRaw,
		Streams:         s.stats.streamsTotal.Load(),
		ActiveStreams:   s.stats.streamsActive.Load(),
		Resumes:         s.stats.resumes.Load(),
		RefusedSessions: s.stats.refusedSessions.Load(),
		RefusedStreams:  s.stats.refusedStreams.Load(),
	}
}

// Carrying reports how many streams and raw connections the server
// carries now, without taking its lock.
func (s *Server) Carrying() int64 {
	return s.stats.streamsActive.Load() + s.rawActive.Load()
}

// ServeHTTP answers health checks and upgrades everything else.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hs := &handshake{start: time.Now(), conn: hsConnFrom(r.Context())}
	if s.refuseBusy(w, r) {
		return
	}
	// Once upgraded, the connection is the handler's: it counts against
	// the handshake limit until its session starts, or until this returns.
	if hs.conn != nil {
		defer s.hs.forget(hs.conn, true)
	}
	mode, ok := s.admit(w, r)
	if !ok {
		return
	}
	resuming := r.Header.Get(mux.ResumeHeader) != "" && mode == modeResumable
	if mode == modeRaw {
		// Counted before track checks draining, as Shutdown sets draining
		// before it looks at the count (streams do the same).
		s.rawActive.Add(1)
		defer s.rawActive.Add(-1)
	}
	switch s.track(resuming) {
	case trackClosed:
		http.Error(w, "sandmux: server is shutting down", http.StatusServiceUnavailable)
		return
	case trackFull:
		s.refuseFull(w, r, resuming)
		return
	}
	// A resume's slot is given back once it has attached (its session
	// holds a slot of its own), or when the upgrade ends, whichever is
	// first: one held for as long as the resumed WebSocket lasts would
	// refuse the next resume of a path the server has not yet noticed
	// is dead.
	releaseSlot := sync.OnceFunc(func() { s.releaseSlot(resuming) })
	defer s.wg.Done()
	defer releaseSlot()
	var rawTarget net.Conn
	if mode == modeRaw {
		tc, ok := s.dialRaw(w, r)
		if !ok {
			return
		}
		rawTarget = tc
	}

	opts := &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled}
	switch mode {
	case modeMux:
		opts.Subprotocols = []string{mux.Subprotocol}
	case modeResumable:
		opts.Subprotocols = []string{mux.SubprotocolResumable}
	}
	if mode != modeRaw {
		w.Header().Set(mux.MaxStreamsHeader, strconv.Itoa(s.cfg.MaxStreams))
	}
	ws, err := websocket.Accept(w, r, opts)
	if err != nil {
		s.log.Info("websocket upgrade failed", logflood.Limit, "remote", r.RemoteAddr, "err", err)
		if rawTarget != nil {
			_ = rawTarget.Close()
		}
		return
	}
	bc := mux.BufConnFrom(r.Context())
	if bc != nil {
		bc.Framing() // the upgrade is done: only frames follow
	}
	// The connection outlives the request, so its lifetime hangs off the
	// server's context, never r.Context(). Raw mode carries arbitrary bytes,
	// so it must not use mux.NetConn, which recognises yamux frames.
	s.stats.sessionsTotal.Add(1)
	log := s.log.With("remote", r.RemoteAddr)
	switch mode {
	case modeRaw:
		s.stats.rawTotal.Add(1)
		s.handshakeOver(hs, "raw")
		s.serveRaw(ws, rawTarget, log)
	case modeResumable:
		// Its data messages go out as frames built in place (mux.Link).
		s.serveResumable(mux.Link{WS: ws, Frames: bc}, r, resuming, releaseSlot, log, hs)
	default:
		s.handshakeOver(hs, mux.Subprotocol)
		s.serveMux(mux.NetConn(s.ctx, ws), log)
	}
}

// admit answers every request that is not an authorised WebSocket
// upgrade in a protocol this server speaks (a body, /healthz, plain HTTP,
// a missing or wrong token, an unknown subprotocol), and reports the mode
// of one that is.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (mode, bool) {
	if r.ContentLength != 0 { // announced (or chunked: -1)
		s.refuseBody(w, r)
		return modeUnsupported, false
	}
	upgrade := isWebSocketUpgrade(r)
	if !upgrade && r.URL.Path == "/healthz" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if s.draining.Load() {
			// Shutting down: a load balancer should send no new sessions.
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintln(w, "draining")
			return modeUnsupported, false
		}
		_, _ = fmt.Fprintln(w, "ok")
		return modeUnsupported, false
	}
	if !upgrade {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "this is a sandmux endpoint: connect with `sandmux proxy` or a WebSocket client (GET /healthz for a health check)", http.StatusUpgradeRequired)
		return modeUnsupported, false
	}
	if !s.authorized(r) {
		s.stats.refusedAuth.Add(1)
		s.log.Info("refused upgrade: missing or wrong token", logflood.Limit, "token", tokenFault(r), "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Bearer realm="sandmux"`)
		http.Error(w, "sandmux: missing or wrong token (send Authorization: Bearer <token>)", http.StatusUnauthorized)
		return modeUnsupported, false
	}
	offered := offeredSubprotocols(r)
	mode := pickMode(offered, s.cfg.ResumeGrace > 0)
	if mode == modeUnsupported && r.Header.Get(mux.ResumeHeader) != "" && slices.Contains(offered, mux.SubprotocolResumable) {
		// A resume to a server restarted with resumption off: say that,
		// not that a version is unknown.
		s.log.Info("refused a resume: resumption is off (--resume-grace 0)", logflood.Limit, "remote", r.RemoteAddr)
		http.Error(w, "sandmux: this server does not resume sessions (started with --resume-grace 0)", http.StatusBadRequest)
		return modeUnsupported, false
	}
	if mode == modeUnsupported {
		s.stats.refusedProtocol.Add(1)
		s.log.Info("refused upgrade: unsupported protocol version", logflood.Limit, "offered", offered, "remote", r.RemoteAddr)
		http.Error(w, fmt.Sprintf("sandmux: unsupported protocol %s; this server speaks %s (upgrade the older side)",
			strings.Join(offered, ", "), strings.Join(s.subprotocols(), ", ")), http.StatusBadRequest)
		return modeUnsupported, false
	}
	return mode, true
}

// refuseFull answers an upgrade that found every session slot taken.
func (s *Server) refuseFull(w http.ResponseWriter, r *http.Request, resuming bool) {
	s.stats.refusedSessions.Add(1)
	if resuming {
		s.log.Warn("refused upgrade: resumes in progress at the session limit", logflood.Limit, "limit", s.cfg.MaxSessions, "remote", r.RemoteAddr)
		http.Error(w, fmt.Sprintf("sandmux: server has as many resumes in progress as its session limit (%d); retry shortly", s.cfg.MaxSessions), http.StatusServiceUnavailable)
		return
	}
	// Sessions whose clients went away without a word (killed, a laptop
	// that never woke) keep their slots for --resume-grace: said, or
	// "close some sessions" reads as nonsense to a user who has none open.
	waiting := s.waitingToResume()
	s.log.Warn("refused upgrade: session limit", logflood.Limit, "limit", s.cfg.MaxSessions, "waiting_to_resume", waiting, "remote", r.RemoteAddr)
	msg := fmt.Sprintf("sandmux: server at its session limit (%d); close some sessions or raise --max-sessions", s.cfg.MaxSessions)
	if waiting > 0 {
		msg = fmt.Sprintf("sandmux: server at its session limit (%d, %d of them lost and waiting up to --resume-grace %s to be resumed); close some sessions, or raise --max-sessions or lower --resume-grace",
			s.cfg.MaxSessions, waiting, s.cfg.ResumeGrace)
	}
	http.Error(w, msg, http.StatusServiceUnavailable)
}

// refuseBody answers a request that announces a body, which no sandmux
// request has, without waiting for the body. net/http reads an unread
// body (to throw it away) before it sends the answer and again after it,
// with no deadline unless the http.Server has a ReadTimeout (which would
// outlive an upgrade): a stranger who announced a body and sent none
// held the connection for as long as it liked, past the header timeout
// and before the token check, until the file descriptors ran out. The
// read deadline set now makes those reads fail at once, and the
// connection is closed after the answer.
func (s *Server) refuseBody(w http.ResponseWriter, r *http.Request) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	s.log.Info("refused a request with a body", logflood.Limit, "method", r.Method, "remote", r.RemoteAddr)
	w.Header().Set("Connection", "close")
	http.Error(w, "sandmux: a request to sandmux has no body (GET /healthz, or a WebSocket upgrade)", http.StatusBadRequest)
}

// waitingToResume counts the sessions that have lost their WebSocket and
// wait to be resumed, each still holding its slot.
func (s *Server) waitingToResume() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, d := range s.resumables {
		if d.rc.Err() == nil && !d.rc.Attached() {
			n++
		}
	}
	return n
}

// trackResult is the verdict on admitting one more WebSocket.
type trackResult int

const (
	trackOK trackResult = iota
	trackClosed
	trackFull
)

// track admits a WebSocket unless the server is closing or full. A resume
// attaches to a session that already holds a slot, so it takes none.
func (s *Server) track(resuming bool) trackResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || (s.draining.Load() && !resuming) {
		return trackClosed
	}
	n := &s.slots
	if resuming {
		n = &s.resumeSlots
	}
	if *n >= s.cfg.MaxSessions {
		return trackFull
	}
	*n++
	s.wg.Add(1)
	return trackOK
}

// releaseSlot gives back what track took from the slot counts (the
// caller calls s.wg.Done itself).
func (s *Server) releaseSlot(resuming bool) {
	s.mu.Lock()
	if resuming {
		s.resumeSlots--
	} else {
		s.slots--
	}
	s.mu.Unlock()
}

// tokenFault says, for the log, which of the two a refused upgrade's
// token was: an operator helping a user tells one who set no token (or
// whose Authorization header is not a bearer one) from one holding a
// stale token only so.
func tokenFault(r *http.Request) string {
	if _, ok := bearerToken(r); ok {
		return "wrong"
	}
	return "missing"
}

// authorized checks the bearer token in constant time.
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.Token == "" {
		return true
	}
	// Both sides are hashed first: ConstantTimeCompare returns at once on
	// a length mismatch, which would reveal the token's length by timing.
	got, ok := bearerToken(r)
	h1, h2 := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(s.cfg.Token))
	return ok && subtle.ConstantTimeCompare(h1[:], h2[:]) == 1
}

// bearerToken is the token of r's `Authorization: Bearer <token>`. The
// scheme is case-insensitive (RFC 7235) and may be followed by several
// spaces; the token is taken as it is.
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimLeft(token, " "), true
}

// Close stops new upgrades, ends every session and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	sessions := slices.Collect(maps.Keys(s.sessions))
	raws := slices.Collect(maps.Keys(s.raws))
	s.mu.Unlock()
	// At once, not one after another: a session's close may wait seconds
	// for a peer that does not read (mux.Resumable.Close), and a raw
	// connection's for the peer's close frame.
	var closing sync.WaitGroup
	for _, sess := range sessions {
		closing.Go(func() { _ = sess.Close() })
	}
	for _, ws := range raws {
		closing.Go(func() { _ = ws.Close(websocket.StatusServiceRestart, shuttingDown) })
	}
	closing.Wait()
	s.cancel()
	s.wg.Wait()
	// Last: the sessions' own lines are written by now, and the count
	// of lines dropped must not wait out its minute in a process about
	// to exit.
	s.logLimit.Close()
	return nil
}

// mode is how one upgraded WebSocket is served.
type mode int

const (
	modeRaw mode = iota
	modeMux
	modeResumable
	modeUnsupported
)

// pickMode prefers the resumable protocol when resumption is on, then
// sandmux.v1; it refuses sandmux versions this server does not speak (so
// an old server says so instead of silently speaking raw to a new client),
// and serves raw otherwise.
func pickMode(offered []string, resumable bool) mode {
	sawSandmux, v1 := false, false
	for _, p := range offered {
		switch {
		case p == mux.SubprotocolResumable && resumable:
			return modeResumable
		case p == mux.Subprotocol:
			v1 = true
		case mux.IsSandmuxSubprotocol(p):
			sawSandmux = true
		}
	}
	switch {
	case v1:
		return modeMux
	case sawSandmux:
		return modeUnsupported
	}
	return modeRaw
}

// subprotocols lists what this server speaks, newest first.
func (s *Server) subprotocols() []string {
	if s.cfg.ResumeGrace > 0 {
		return []string{mux.SubprotocolResumable, mux.Subprotocol}
	}
	return []string{mux.Subprotocol}
}

func offeredSubprotocols(r *http.Request) []string {
	var out []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func isWebSocketUpgrade(r *http.Request) bool {
	return headerContainsToken(r.Header, "Connection", "upgrade") && headerContainsToken(r.Header, "Upgrade", "websocket")
}

func headerContainsToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
