package client_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/sandmux/sandmux/client"
)

// A token or header value read with its line end (a CRLF file) fails
// every handshake: Validate says so, rather than the dial, whose error
// reads as an outage and is retried until --connect-timeout.
func TestValidateRefusesControlCharacters(t *testing.T) {
	for _, tc := range []struct {
		name   string
		token  string
		header http.Header
		want   string
	}{
		{name: "token with CR", token: "secret\r", want: "the token has a control character at byte 7"},
		{name: "token with LF inside", token: "sec\nret", want: "the token has a control character at byte 4"},
		{name: "token with tab", token: "sec\tret", want: "the token has a control character at byte 4"},
		{name: "header with CR", header: http.Header{"E2b-Traffic-Access-Token": {"abc\r"}}, want: "the value of header E2b-Traffic-Access-Token has a control character at byte 4"},
		{name: "header with tab", header: http.Header{"X-A": {"a\tb"}}},
		{name: "plain", token: "secret", header: http.Header{"X-A": {"b"}}},
	} {
		cfg := client.DefaultConfig()
		cfg.URL = "ws://127.0.0.1:1"
		cfg.Token, cfg.Header = tc.token, tc.header
		err := cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (!errors.Is(err, client.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "secret"):
			t.Errorf("%s: the error shows the token: %v", tc.name, err)
		}
	}
	if _, _, err := client.ParseHeader("X-A: b\x01"); !errors.Is(err, client.ErrBadHeader) {
		t.Errorf("ParseHeader with a control character: %v, want ErrBadHeader", err)
	}
}
