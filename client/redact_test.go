package client_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"

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
