package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/internal/logflood"
	"github.com/sandmux/sandmux/mux"
)

// detached is the resume state the server keeps for a sandmux.v2 session.
type detached struct {
	rc     *mux.Resumable
	secret [mux.SecretSize]byte
	// auth is a hash of the upgrade's credentials: a resume must present
	// the same ones as the original upgrade, not only the secret.
	auth [sha256.Size]byte
}

// authHash fingerprints the credentials a request carries: its bearer
// token as the token check reads it, so that the header's spelling
// (`bearer`, spaces) may differ between upgrades; any other
// Authorization header as it is.
func authHash(r *http.Request) [sha256.Size]byte {
	if token, ok := bearerToken(r); ok {
		return sha256.Sum256([]byte("Bearer " + token))
	}
	return sha256.Sum256([]byte(r.Header.Get("Authorization")))
}

// serveResumable reads the client's hello and either starts a new
// resumable session (served by this call until it ends) or attaches this
// WebSocket to the session it resumes (held by this call until the
// WebSocket is lost again). slotFree says the upgrade was admitted as a
// resume, past the session limit and the drain, so it may only resume;
// attached is called once a resume has attached.
func (s *Server) serveResumable(link mux.Link, r *http.Request, slotFree bool, attached func(), log *slog.Logger, hs *handshake) {
	ws := link.WS
	hctx, cancel := context.WithTimeout(s.ctx, s.cfg.Mux.HeaderTimeout)
	defer cancel()
	hello, err := mux.ReadHello(hctx, ws)
	if err != nil {
		log.Info("no valid hello on a sandmux.v2 connection", logflood.Limit, "err", err)
		_ = ws.Close(websocket.StatusProtocolError, "expected a sandmux hello")
		return
	}
	if hello.Resuming() {
		s.resume(link, hello, authHash(r), attached, log, hs)
		return
	}
	if slotFree {
		log.Info("refused a new session on an upgrade marked as a resume", logflood.Limit)
		_ = ws.Close(websocket.StatusPolicyViolation, "a new session must not carry "+mux.ResumeHeader)
		return
	}

	d := &detached{auth: authHash(r)}
	var id [mux.SessionIDSize]byte
	// Drawn now, per session: a secret drawn at start-up would be cloned
	// into every sandbox made from a snapshot of this process.
	_, _ = rand.Read(id[:])
	_, _ = rand.Read(d.secret[:])
	rcfg := s.cfg.Resume
	rcfg.Grace = s.cfg.ResumeGrace
	// The session's own lines (its WebSocket lost, resumed) name it, not
	// the address of its first WebSocket, which a resume replaces: the
	// lost one is in the error, the new one in "session resumed".
	rcfg.Logger = s.log.With("session", shortID(id))
	d.rc, err = mux.NewResumable(rcfg)
	if err != nil {
		log.Error("cannot start resumable session", "err", err)
		_ = ws.Close(websocket.StatusInternalError, "server misconfigured")
		return
	}
	welcome := func(uint64) error {
		return mux.WriteWelcome(hctx, ws, mux.Welcome{Status: mux.WelcomeNew, ID: id, Secret: d.secret, Grace: s.cfg.ResumeGrace})
	}
	// Registered before the welcome goes out: a client may resume the
	// moment it has the id.
	s.mu.Lock()
	s.resumables[id] = d
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.resumables, id)
		s.mu.Unlock()
	}()
	if _, err := d.rc.Attach(link, 0, welcome); err != nil {
		log.Info("resumable session handshake failed", logflood.Limit, "err", err)
		_ = d.rc.Close()
		_ = ws.CloseNow()
		return
	}
	cancel()
	s.handshakeOver(hs, mux.SubprotocolResumable)
	s.serveMux(d.rc, log.With("session", shortID(id)))
}

// resume attaches link to the session hello names, if the secret and
// credentials match, and holds it until it is lost.
func (s *Server) resume(link mux.Link, hello mux.Hello, auth [sha256.Size]byte, attached func(), log *slog.Logger, hs *handshake) {
	ws := link.WS
	log = log.With("session", shortID(hello.ID))
	hctx, cancel := context.WithTimeout(s.ctx, s.cfg.Mux.HeaderTimeout)
	defer cancel()
	s.mu.Lock()
	d := s.resumables[hello.ID]
	s.mu.Unlock()
	refuse := func(st mux.WelcomeStatus) {
		s.stats.refusedResumes.Add(1)
		_ = mux.WriteWelcome(hctx, ws, mux.Welcome{Status: st})
		_ = ws.Close(websocket.StatusNormalClosure, "")
	}
	if d == nil {
		log.Info("resume refused: unknown session", logflood.Limit)
		refuse(mux.WelcomeUnknown)
		return
	}
	if subtle.ConstantTimeCompare(hello.Secret[:], d.secret[:]) != 1 || subtle.ConstantTimeCompare(auth[:], d.auth[:]) != 1 {
		log.Warn("resume refused: wrong resume secret or credentials", logflood.Limit)
		refuse(mux.WelcomeDenied)
		return
	}
	select {
	case <-d.rc.Done():
		// Ended but not yet forgotten (a resume that broke the protocol
		// ended it, or its grace ran out): told at once, as for a
		// forgotten one. Attach would return the error that ended it,
		// and a protocol error there means the attempt that made it,
		// which gets no welcome; this one is another attempt (§9.4).
		log.Info("resume refused: session ended", logflood.Limit)
		refuse(mux.WelcomeUnknown)
		return
	default:
	}
	welcomed := false
	welcome := func(received uint64) error {
		welcomed = true
		// Given back before the client hears it has resumed, so that its
		// next resume cannot find the slot still taken.
		attached()
		return mux.WriteWelcome(hctx, ws, mux.Welcome{Status: mux.WelcomeResumed, ID: hello.ID, Received: received, Grace: s.cfg.ResumeGrace})
	}
	lost, err := d.rc.Attach(link, hello.Received, welcome)
	if err != nil {
		log.Info("resume failed", logflood.Limit, "err", err)
		select {
		case <-d.rc.Done():
			if !welcomed && !errors.Is(err, mux.ErrResumeProtocol) {
				// Ended (its grace ran out) but not yet forgotten: the
				// client is told at once, as for a forgotten one, instead
				// of retrying until it is.
				refuse(mux.WelcomeUnknown)
				return
			}
		default:
		}
		_ = ws.CloseNow()
		return
	}
	cancel()
	s.stats.resumes.Add(1)
	s.handshakeOver(hs, "resume")
	log.Info("session resumed", "client_received", hello.Received)
	select {
	case <-lost:
	case <-d.rc.Done():
	case <-s.ctx.Done():
	}
}

func shortID(id [mux.SessionIDSize]byte) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 8)
	for i := range 4 {
		b[2*i], b[2*i+1] = hex[id[i]>>4], hex[id[i]&0xf]
	}
	return string(b)
}
