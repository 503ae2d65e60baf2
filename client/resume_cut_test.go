package client_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
)

// A resume attempt still under way when the session ends (its
// --resume-timeout ran out and the agent closes it, or its proxy left)
// was logged as a failure, "resume: dial failed; retrying" with
// "context canceled", neither of which was so. It is said as cut short.
func TestResumeAttemptCutShortIsNotAFailure(t *testing.T) {
	for _, c := range []struct {
		name      string
		handshake bool          // the attempt hangs in the resume handshake, not the upgrade
		grace     time.Duration // the client's resume timeout; 0: closed while it lasts
	}{
		{name: "closed during the upgrade"},
		{name: "closed during the handshake", handshake: true},
		{name: "resume timeout during the upgrade", grace: 500 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			release := make(chan struct{})
			attempting := make(chan struct{})
			var upgrades atomic.Int64
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := upgrades.Add(1)
				if n > 1 && !c.handshake {
					close(attempting)
					<-release // the upgrade is never answered
					return
				}
				ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{mux.SubprotocolResumable}})
				if err != nil {
					return
				}
				defer ws.CloseNow()
				ctx, cancel := context.WithTimeout(r.Context(), waitTimeout)
				defer cancel()
				if _, err := mux.ReadHello(ctx, ws); err != nil {
					return
				}
				if n > 1 {
					close(attempting)
					<-release // the hello is never answered
					return
				}
				_ = mux.WriteWelcome(ctx, ws, mux.Welcome{Status: mux.WelcomeNew, ID: [mux.SessionIDSize]byte{1}, Secret: [mux.SecretSize]byte{2}, Grace: time.Minute})
				_ = ws.Close(websocket.StatusGoingAway, "") // the path drops, after the welcome
			})
			url := wsURL(quietServer(t, h, false).URL)
			defer close(release) // before the server's Close, which waits for its handlers

			var logs testutil.Buffer
			cfg := testConfig(url)
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			if c.grace > 0 {
				cfg.Resume.Grace = c.grace
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			sess, err := client.Dial(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-attempting:
			case <-ctx.Done():
				t.Fatal("no resume attempt")
			}
			if c.grace > 0 {
				// As the agent does once the session has ended.
				select {
				case <-sess.Done():
				case <-ctx.Done():
					t.Fatal("the resume timeout never ended the session")
				}
			}
			_ = sess.Close()
			out := logs.String()
			if strings.Contains(out, "context canceled") || strings.Contains(out, "failed; retrying") {
				t.Errorf("an attempt the session's end cut short was logged as a failure:\n%s", out)
			}
			want := "resume attempt cut short: the session was closed"
			if c.grace > 0 {
				want = "resume attempt cut short: the session was not resumed within 500ms (--resume-timeout)"
			}
			if !strings.Contains(out, want) {
				t.Errorf("no line says %q:\n%s", want, out)
			}
		})
	}
}
