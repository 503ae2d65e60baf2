package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/internal/logflood"
	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/mux"
	"github.com/sandmux/sandmux/server"
	"github.com/sandmux/sandmux/server/metrics"
)

// suppressed sums the counts of the "log lines suppressed" lines of
// kind in logs, and says how many such lines there are.
func suppressed(logs, kind string) (count, lines int) {
	re := regexp.MustCompile(`msg="` + logflood.SuppressedMsg + `" kind="` + regexp.QuoteMeta(kind) + `" count=(\d+) over=`)
	for _, m := range re.FindAllStringSubmatch(logs, -1) {
		n, _ := strconv.Atoi(m[1])
		count += n
		lines++
	}
	return count, lines
}

// A stranger looping on the URL with a wrong token gets a burst of log
// lines a minute and one line counting the rest; every refusal is still
// counted in the metrics. Before, each refusal wrote a line (the burst
// held), and what was dropped was said only by the next refusal after
// the minute: a flood that stopped was never counted in the log. A
// resume to a server with resumption off (its line was not limited at
// all) too.
func TestRefusedUpgradeFloodIsCountedInTheLog(t *testing.T) {
	for _, tt := range []struct {
		kind    string
		n       int
		mod     func(*server.Config)
		headers []string
		status  int
		metric  string
	}{
		{"refused upgrade: missing or wrong token", 2000, func(c *server.Config) { c.Token = "right" },
			[]string{"Authorization", "Bearer wrong"}, http.StatusUnauthorized, `sandmux_refusals_total{reason="auth"} 2000`},
		{"refused a resume: resumption is off (--resume-grace 0)", 200, func(c *server.Config) { c.ResumeGrace = 0 },
			[]string{"Sec-WebSocket-Protocol", mux.SubprotocolResumable, mux.ResumeHeader, "1"}, http.StatusBadRequest, ""},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			s, logs := logServer(t, testutil.EchoServer(t).Addr, tt.mod)
			start := time.Now()
			req, err := http.NewRequest(http.MethodGet, s.ts.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = upgrade(tt.headers...)
			for i := range tt.n {
				resp, err := s.ts.Client().Do(req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				_ = resp.Body.Close()
				if resp.StatusCode != tt.status {
					t.Fatalf("request %d: %s, want %d", i, resp.Status, tt.status)
				}
			}
			if tt.metric != "" {
				m := metrics.New()
				m.SetSource(s.srv.Stats)
				rec := httptest.NewRecorder()
				m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
				if !strings.Contains(rec.Body.String(), tt.metric+"\n") {
					t.Errorf("metrics lack %q:\n%s", tt.metric, rec.Body.String())
				}
			}
			elapsed := time.Since(start)
			_ = s.srv.Close() // says what is still to be counted
			testutil.WantFloodCounted(t, logs.String(), tt.kind, tt.n, elapsed)
		})
	}
}

// A session's start and end lines are written as ever when a token
// guards the server, at any rate; without one, anyone can open
// sessions, and past a generous burst they are counted instead.
func TestSessionLines(t *testing.T) {
	const sessions, burst = 5, 2
	for _, token := range []string{"right", ""} {
		t.Run("token="+token, func(t *testing.T) {
			s, logs := logServer(t, testutil.EchoServer(t).Addr, func(c *server.Config) { c.Token = token })
			s.srv.SetSessionLineBurst(burst)
			cfg := clientConfig(s.url)
			cfg.Token = token
			for range sessions {
				dial(t, cfg)
			}
			// and a raw one
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			h := http.Header{}
			if token != "" {
				h.Set("Authorization", "Bearer "+token)
			}
			ws, _, err := websocket.Dial(ctx, s.url, &websocket.DialOptions{HTTPHeader: h})
			if err != nil {
				t.Fatalf("raw dial: %v", err)
			}
			// Every one served (its start line written or being written)
			// before Close ends them all, each with its end line.
			testutil.WaitFor(t, waitTimeout, "every session served", func() bool {
				st := s.srv.Stats()
				return st.ActiveSessions == sessions && st.ActiveRaw == 1
			})
			// The raw one ended by its client, which does not read: the
			// server's close would wait for its answer.
			_ = ws.Close(websocket.StatusNormalClosure, "")
			_ = s.srv.Close()
			if got := s.srv.Stats().Sessions; got != sessions+1 {
				t.Errorf("Stats().Sessions = %d, want %d", got, sessions+1)
			}
			for _, msg := range []string{"session started", "session ended"} {
				logged := testutil.CountLines(logs.String(), `msg="`+msg+`"`)
				count, _ := suppressed(logs.String(), msg)
				want, wantCount := sessions+1, 0
				if token == "" {
					want, wantCount = burst, sessions+1-burst
				}
				if logged != want || count != wantCount {
					t.Errorf("%d %q lines and %d counted, want %d and %d:\n%s", logged, msg, count, want, wantCount, logs.String())
				}
			}
		})
	}
}
