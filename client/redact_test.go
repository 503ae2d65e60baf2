package client_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"unicode"

	"github.com/coder/websocket"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/internal/testutil"
)

// TestDialErrorRedactsQuery: a dial that fails inside net/http (the
// server closes or resets the connection before answering) is reported
// with net/http's own text, which quotes the URL it requested; the
// query values in it (an edge's access token, say) must be masked there
// as in the URL the line starts with, or they reach the terminal, the
// agent's log and `sandmux status`.
func TestDialErrorRedactsQuery(t *testing.T) {
	const secret = "S3CRET-in-query"
	for _, tt := range []struct {
		name   string
		handle func(net.Conn)
	}{
		{"closed before answering", func(c net.Conn) {
			_, _ = http.ReadRequest(bufio.NewReader(c))
		}},
		{"reset before answering", func(c net.Conn) {
			_, _ = http.ReadRequest(bufio.NewReader(c))
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := testutil.Serve(t, tt.handle)
			url := "ws://" + srv.Addr + "/p?access_token=" + secret + "&x=%22" + secret
			_, err := dialErr(t, testConfig(url))
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error shows the query's secret:\n  %s", err)
			}
			if !strings.Contains(err.Error(), "access_token=xxxxx") {
				t.Fatalf("the error does not name the (redacted) URL it failed on:\n  %s", err)
			}
		})
	}
}

// TestServerWordsHaveNoControlCharacters: what a server says (an
// upgrade's "sandmux: ..." body, a WebSocket close reason) reaches the
// user's terminal; a hostile or impersonated server (a wrong URL, a
// ws:// path through a hostile network) must not be able to send it
// escape sequences.
func TestServerWordsHaveNoControlCharacters(t *testing.T) {
	const esc = "\x1b]0;title\x07\x1b[1A\x1b[2K\x1b[31menter your password\x1b[0m"
	ts := quietServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "sandmux: "+esc, http.StatusServiceUnavailable)
	}), false)
	_, err := dialErr(t, testConfig(wsURL(ts.URL)))
	if strings.ContainsFunc(err.Error(), unicode.IsControl) || !strings.Contains(err.Error(), "enter your password") {
		t.Errorf("dial error %q: want the server's words without control characters", err)
	}
	loss := client.DescribeLoss(websocket.CloseError{Code: websocket.StatusGoingAway, Reason: esc})
	if strings.ContainsFunc(loss, unicode.IsControl) || !strings.Contains(loss, "enter your password") {
		t.Errorf("DescribeLoss = %q: want the close reason without control characters", loss)
	}
}
