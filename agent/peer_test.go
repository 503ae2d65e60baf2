package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestProxyRefusesAgentOfAnotherUser: a proxy sends its credentials (the
// token, --header values, the HTTP proxy's password) to the agent's
// socket, so it must check who holds that socket before it sends
// anything, as the agent checks its peers. A socket in a directory
// another user controls (an --agent-dir under /tmp that they made first)
// is theirs: the proxy sent them the token before it did.
func TestProxyRefusesAgentOfAnotherUser(t *testing.T) {
	dir := shortDir(t)
	ln, err := net.Listen("unix", SocketPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- ""
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(c)
		got <- string(b)
	}()
	// The socket's holder (this process) is now "another user".
	me := myUID()
	myUID = func() int { return me + 1 }
	defer func() { myUID = func() int { return me } }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	started := false
	c, err := Open(ctx, dir, func() error { started = true; return nil }, OpenRequest{URL: "ws://127.0.0.1:9", Token: "the-token", Header: map[string][]string{"E2b-Traffic-Access-Token": {"edge-secret"}}})
	if err == nil {
		_ = c.Close()
		t.Fatal("Open through another user's socket succeeded")
	}
	if !errors.Is(err, ErrPeerRefused) || !strings.Contains(err.Error(), "uid "+strconv.Itoa(me)) || !strings.Contains(err.Error(), "--agent-dir") {
		t.Errorf("Open = %v: want ErrPeerRefused naming the socket's uid %d and what to do", err, me)
	}
	if started {
		t.Error("Open started an agent of its own in a directory whose socket another user holds")
	}
	if sent := <-got; strings.Contains(sent, "the-token") || strings.Contains(sent, "edge-secret") {
		t.Errorf("the other user's socket read the credentials: %q", sent)
	} else if sent != "" {
		t.Errorf("the other user's socket read %q, want nothing", sent)
	}
}
