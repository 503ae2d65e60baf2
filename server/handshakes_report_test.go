package server

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Refusals at the handshake limit are logged once as a burst starts and
// then at most once a minute. The refusals of a burst's last minute were
// logged only when the next burst began, maybe hours later, added to its
// first refusal, and that line said "still refusing" instead of saying a
// burst had started: an operator saw neither the first burst's end nor
// the second's start. They are now logged by the first connection after
// the minute, refused or not, and a refusal after a quiet minute starts
// a burst of its own.
func TestHandshakeLimitReportsEachBurst(t *testing.T) {
	h := &handshakes{max: 1, answerLimit: time.Hour, conns: make(map[net.Conn]*hsConn)}
	var conns []net.Conn
	// Each admitted connection's request is in the handler at once, so
	// that none makes way for the next.
	admit := func(at time.Time) (verdict, []busyReport) {
		c, peer := net.Pipe()
		t.Cleanup(func() { _ = c.Close(); _ = peer.Close() })
		conns = append(conns, c)
		v, r, evicted := h.admit(c, at)
		if evicted != nil {
			t.Fatalf("a connection in the handler made way for another")
		}
		h.serving(c, true)
		return v, r
	}
	forgetAll := func() {
		for _, c := range conns {
			h.forget(c, false)
		}
		conns = nil
	}
	t0 := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	if v, r := admit(t0); v != admitted || len(r) != 0 {
		t.Fatalf("first connection: %v, %+v", v, r)
	}
	if v, r := admit(t0); v != answerBusy || len(r) != 1 || !r[0].first || r[0].answered != 1 {
		t.Fatalf("first refusal: %v, %+v; want it logged as a burst's start", v, r)
	}
	if v, r := admit(t0.Add(30 * time.Second)); v != dropped || len(r) != 0 {
		t.Fatalf("refusal within the minute: %v, %+v; want it counted, not logged", v, r)
	}
	forgetAll()

	// The burst is over; the next connection after the minute, admitted,
	// logs its last refusal.
	v, r := admit(t0.Add(2 * time.Minute))
	if v != admitted || len(r) != 1 || r[0].first || r[0].answered != 0 || r[0].closed != 1 {
		t.Fatalf("first connection after the burst: %v, %+v; want the burst's unlogged refusal logged", v, r)
	}
	forgetAll()

	// An hour later, a new burst is logged as one, with its own count.
	later := t0.Add(time.Hour)
	admit(later)
	v, r = admit(later)
	if v != answerBusy || len(r) != 1 || !r[0].first || r[0].answered != 1 || r[0].closed != 0 {
		t.Fatalf("refusal starting a second burst: %v, %+v; want one line saying a burst started, counting 1", v, r)
	}
	forgetAll()
}

// A connection over the limit whose request came just as its answer's
// time ran out (the timer fired, its Close not yet done) got no answer
// from the handler, so net/http sent its own: 200 OK with an empty body,
// which a client took for the server's answer to its upgrade. It is
// answered 503 as any other busy one; the timer's Close may still cut it.
func TestBusyAnswerAtItsDeadlineIs503(t *testing.T) {
	s, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.hs.max = 1
	first, firstPeer := net.Pipe() // takes the one place
	defer firstPeer.Close()
	defer first.Close()
	s.ConnContext(context.Background(), first)
	s.hs.serving(first, true) // its request is in the handler: it stays
	defer s.hs.forget(first, false)
	c, peer := net.Pipe()
	defer peer.Close()
	defer c.Close()
	ctx := s.ConnContext(context.Background(), c)
	s.hs.mu.Lock()
	s.hs.conns[c].timer.Stop() // as if it had just fired
	s.hs.mu.Unlock()
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("a busy connection's request at its deadline: %d, Retry-After %q; want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	s.hs.forget(c, false)
}
