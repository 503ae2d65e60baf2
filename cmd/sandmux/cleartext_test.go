package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sandmux/sandmux/client"
)

// A token or header given with a ws:// URL to another machine was sent
// in clear text without a word: anyone on the path read the token (and
// the resume secret after it). It is refused, saying to use wss:// or
// --insecure; ws:// on this machine (a tunnel, a test) stays allowed.
func TestCleartextCredentialsRefused(t *testing.T) {
	_, _, err := runApp(t, "proxy", "--no-agent", "--token", "s3cret", "--url", "ws://8081-{host}.example.invalid", "abc")
	want := "the token would cross the network in clear text to 8081-abc.example.invalid (ws:// is not encrypted): use wss:// (E2B serves it), name a server on this machine 127.0.0.1 or localhost, or add --insecure to send the token anyway"
	if err == nil || err.Error() != want {
		t.Fatalf("proxy with a token over ws:// to another host: %v\nwant %s", err, want)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("the refusal shows the token: %v", err)
	}

	for _, tc := range []struct {
		url     string
		token   string
		header  http.Header
		refused bool
	}{
		{"ws://sandbox.example:8081", "t", nil, true},
		{"ws://10.0.0.2:8081", "", http.Header{"E2b-Traffic-Access-Token": {"x"}}, true},
		{"ws://[2001:db8::1]:8081", "t", nil, true},
		{"ws://sandbox.example:8081", "", nil, false}, // nothing to leak
		{"wss://sandbox.example", "t", nil, false},
		{"ws://127.0.0.1:8081", "t", nil, false},
		{"ws://127.9.9.9:8081", "t", nil, false},
		{"ws://[::1]:8081", "t", nil, false},
		{"ws://[::ffff:127.0.0.1]:8081", "t", nil, false},
		{"ws://localhost:8081", "t", nil, false},
		{"ws://LOCALHOST.:8081", "t", nil, false},
		{"ws://localhost.example:8081", "t", nil, true},
	} {
		cfg := client.Config{URL: tc.url, Token: tc.token, Header: tc.header}
		if err := cleartextCredentials(cfg); (err != nil) != tc.refused {
			t.Errorf("%s, token %q, header %v: %v; refused %v", tc.url, tc.token, tc.header, err, tc.refused)
		}
	}
}

// A ws:// URL that cleartextCredentials lets a token through to, as this
// machine's, is never sent through a proxy: Go's proxy rule and the
// ALL_PROXY one exempt only "localhost" and loopback addresses, so
// ws://LOCALHOST.:8081 with a token and ALL_PROXY set sent the token in
// clear text to the proxy, across the network.
func TestLoopbackSpellingsAreNeverProxied(t *testing.T) {
	t.Setenv("ALL_PROXY", "socks5h://proxy.example.invalid:1080")
	for _, u := range []string{
		"ws://localhost:8081", "ws://LOCALHOST:8081", "ws://localhost.:8081", "ws://LocalHost.:8081",
		"ws://127.0.0.1:8081", "ws://127.9.9.9:8081", "ws://[::1]:8081", "ws://[::ffff:127.0.0.1]:8081",
	} {
		if err := cleartextCredentials(client.Config{URL: u, Token: "t"}); err != nil {
			t.Fatalf("%s: %v; want it taken for this machine", u, err)
		}
		if p, err := proxyFor(u); p != nil || err != nil {
			t.Errorf("%s with ALL_PROXY set: proxy %v, %v; want a direct connection", u, p, err)
		}
	}
}
