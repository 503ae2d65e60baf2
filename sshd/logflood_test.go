//go:build unix

package sshd

import (
	"log/slog"
	"testing"
	"time"

	"github.com/sandmux/sandmux/internal/testutil"
	"golang.org/x/crypto/ssh"
)

// A stranger looping on a public embedded server with a key it does not
// know, or a key holder looping on a forward it may not make, gets a
// burst of log lines a minute and one line counting the rest, written at
// the latest when the server stops. Each attempt wrote a line, growing
// the sandbox's log without end.
func TestRefusedLoginFloodIsCountedInTheLog(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		kind  string
		n     int
		flood func(t *testing.T, f *fixture, n int)
	}{
		{"ssh login refused", 60, func(t *testing.T, f *fixture, n int) {
			stranger := ssh.PublicKeys(newKey(t))
			for i := range n {
				if c, err := f.dial(t, stranger); err == nil {
					c.Close()
					t.Fatalf("attempt %d: an unknown key logged in", i)
				}
			}
		}},
		{"refused direct-tcpip: not allowed", 500, func(t *testing.T, f *fixture, n int) {
			c, err := f.dial(t)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for i := range n {
				if conn, err := c.Dial("tcp", "127.0.0.1:1"); err == nil {
					conn.Close()
					t.Fatalf("attempt %d: a target not allowed was dialled", i)
				}
			}
		}},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			t.Parallel()
			var logs testutil.Buffer
			f := start(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
			begin := time.Now()
			tt.flood(t, f, tt.n)
			elapsed := time.Since(begin)
			// Every attempt's line written: Close cutting the last
			// connection before it read the client's EOF would make
			// it a handshake failure, logged at debug.
			testutil.WaitFor(t, 10*time.Second, "every connection ended", func() bool {
				f.srv.mu.Lock()
				defer f.srv.mu.Unlock()
				return len(f.srv.conns) == 0
			})
			_ = f.srv.Close() // says what is still to be counted
			testutil.WantFloodCounted(t, logs.String(), tt.kind, tt.n, elapsed)
		})
	}
}
