package server_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sandmux/sandmux/server"
)

// TestRequestBodyNotAwaited: no sandmux request has a body, but net/http
// reads one that a request announces (to throw it away) before it sends
// the answer and again after it, with no deadline unless the http.Server
// has a ReadTimeout, which cmd/sandmux's does not (it would outlive the
// upgrade). A stranger who announced a body and sent none held the
// connection, past --header-timeout and the token check, for as long as
// it liked: thousands of them used up the server's file descriptors.
// Such a request is now answered at once, without waiting for its body,
// and its connection closed.
func TestRequestBodyNotAwaited(t *testing.T) {
	s := startServer(t, newEchoTarget(t).addr, func(c *server.Config) { c.Token = "s3cret" })
	addr := strings.TrimPrefix(s.ts.URL, "http://")
	for _, req := range []string{
		"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nAuthorization: Bearer wrong\r\nContent-Length: 1000\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nAuthorization: Bearer s3cret\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 10\r\n\r\n",
	} {
		line, _, _ := strings.Cut(req, "\r\n")
		t.Run(line, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			// Far below anything the server would wait for on its own.
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer while the announced body is not sent: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(string(body), "sandmux: ") {
				t.Errorf("answer %d %q, want 400 and a sandmux: line", resp.StatusCode, body)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Errorf("after the answer: %v, want the connection closed (EOF)", err)
			}
		})
	}
}
