package client_test

import (
	"errors"
	"testing"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/mux"
)

// expandCase is one ExpandURL call and what it must give.
type expandCase struct {
	name, template, host string
	want                 string
	wantErr              string // the exact line a user sees; "" means success
}

// checkExpand runs each case as a subtest.
func checkExpand(t *testing.T, tests []expandCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := client.ExpandURL(tt.template, tt.host)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("ExpandURL(%q, %q) = %q, %v; want %q", tt.template, tt.host, got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, client.ErrBadURL) {
				t.Fatalf("ExpandURL(%q, %q) = %q, %v; want ErrBadURL", tt.template, tt.host, got, err)
			}
			if err.Error() != tt.wantErr {
				t.Fatalf("error text\n  %s\nwant\n  %s", err, tt.wantErr)
			}
		})
	}
}

func TestExpandURL(t *testing.T) {
	checkExpand(t, []expandCase{
		{name: "e2b default", template: client.DefaultURLTemplate, host: "abc", want: "wss://8081-abc.e2b.app"},
		{name: "e2b literal", template: "wss://8081-{host}.e2b.app", host: "abc", want: "wss://8081-abc.e2b.app"},
		{name: "host twice", template: "ws://{host}.example:8081/{host}", host: "sb1", want: "ws://sb1.example:8081/sb1"},
		{name: "path and query kept", template: "wss://{host}.example/tunnel?x=1", host: "i9", want: "wss://i9.example/tunnel?x=1"},
		{name: "no placeholder used as is", template: "ws://127.0.0.1:8081", host: "ignored", want: "ws://127.0.0.1:8081"},
		{name: "no placeholder, no host", template: "wss://box.example/ws", host: "", want: "wss://box.example/ws"},
		{
			name: "http rejected", template: "http://8081-{host}.e2b.app", host: "abc",
			wantErr: `bad url: "http://8081-abc.e2b.app": scheme must be ws:// or wss:// (for example wss://8081-{host}.e2b.app)`,
		},
		{
			name: "https without placeholder rejected", template: "https://box.example", host: "",
			wantErr: `bad url: "https://box.example": scheme must be ws:// or wss:// (for example wss://8081-{host}.e2b.app)`,
		},
		{
			name: "host with slash", template: client.DefaultURLTemplate, host: "abc/def",
			wantErr: "bad url: host \"abc/def\" is not a plain host name (pass the sandbox id, e.g. `sandmux proxy abc123`)",
		},
		{
			name: "host with colon", template: client.DefaultURLTemplate, host: "abc:22",
			wantErr: "bad url: host \"abc:22\" is not a plain host name (pass the sandbox id, e.g. `sandmux proxy abc123`)",
		},
		{
			name: "host with at sign", template: client.DefaultURLTemplate, host: "user@abc",
			wantErr: "bad url: host \"user@abc\" is not a plain host name (pass the sandbox id, e.g. `sandmux proxy abc123`)",
		},
		{
			name: "empty host with template", template: client.DefaultURLTemplate, host: "",
			wantErr: `bad url: "wss://8081-{host}.e2b.app" needs a host name to fill {host}`,
		},
		{
			name: "no host in url", template: "ws:///path", host: "",
			wantErr: `bad url: "ws:///path" has no host`,
		},
		{
			name: "no scheme", template: "127.0.0.1:8081", host: "",
			wantErr: `bad url: "127.0.0.1:8081" has no scheme: start it with ws:// or wss:// (for example wss://8081-{host}.e2b.app)`,
		},
		{
			name: "ssh's token (websocat's recipe)", template: "wss://8081-%h.e2b.app", host: "abc",
			wantErr: `bad url: "wss://8081-%h.e2b.app": %h is ssh's token, which ssh expands only where it is written in the ProxyCommand line; write {host}, sandmux's, as in wss://8081-{host}.e2b.app`,
		},
		{
			name: "one slash", template: "ws:/127.0.0.1:8081", host: "",
			wantErr: `bad url: "ws:/127.0.0.1:8081": the scheme takes two slashes, as in ws://127.0.0.1:8081 or wss://8081-{host}.e2b.app`,
		},
		{
			name: "white space around", template: " ws://127.0.0.1:8081", host: "",
			wantErr: `bad url: " ws://127.0.0.1:8081" has white space around it: give the URL alone`,
		},
		{name: "ipv6 in brackets", template: "ws://[::1]:8081/{host}", host: "abc", want: "ws://[::1]:8081/abc"},
		{
			name: "ipv6 without brackets", template: "ws://::1:8081", host: "",
			wantErr: `bad url: "ws://::1:8081": the host has a colon: an IPv6 address goes in brackets, as in ws://[::1]:8081, and a host has one :PORT`,
		},
		{
			name: "two ports", template: "ws://{host}:8081:22", host: "abc",
			wantErr: `bad url: "ws://abc:8081:22": the host has a colon: an IPv6 address goes in brackets, as in ws://[::1]:8081, and a host has one :PORT`,
		},
		{
			name: "port out of range", template: "ws://127.0.0.1:99999", host: "",
			wantErr: `bad url: "ws://127.0.0.1:99999": port "99999" is not 1-65535`,
		},
		{
			name: "empty port", template: "ws://127.0.0.1:/x", host: "",
			wantErr: `bad url: "ws://127.0.0.1:/x": port "" is not 1-65535`,
		},
		{
			// url.Parse refuses these with "invalid port", which named
			// no range.
			name: "negative port", template: "ws://127.0.0.1:-1", host: "",
			wantErr: `bad url: "ws://127.0.0.1:-1": port "-1" is not 1-65535`,
		},
		{
			name: "port not a number", template: "ws://{host}:abc/x", host: "abc",
			wantErr: `bad url: "ws://abc:abc/x": port "abc" is not 1-65535`,
		},
		{
			// Refused by url.Parse before the check for credentials:
			// the password was shown, twice.
			name: "credentials in a url that does not parse", template: "ws://me:s3cret@{host}:-1", host: "abc",
			wantErr: `bad url: "ws://xxxxx@abc:-1": port "-1" is not 1-65535`,
		},
		{
			name: "credentials and a bad escape", template: "ws://me:s3cret@{host}%zz/", host: "abc",
			wantErr: `bad url: "ws://xxxxx@abc%zz/": invalid URL escape "%zz"`,
		},
		{
			name: "only a colon for host", template: "ws://:", host: "",
			wantErr: `bad url: "ws://:" has no host`,
		},
		{
			name: "port without host", template: "ws://:8081", host: "",
			wantErr: `bad url: "ws://:8081" has no host`,
		},
		{
			name: "placeholder in capitals", template: "wss://8081-{HOST}.e2b.app", host: "abc",
			wantErr: `bad url: "wss://8081-{HOST}.e2b.app": the only placeholder is {host}, in lower case`,
		},
		{
			name: "mistyped placeholder in the path", template: "ws://127.0.0.1:8081/{hots}", host: "abc",
			wantErr: `bad url: "ws://127.0.0.1:8081/{hots}": the only placeholder is {host}, in lower case`,
		},
		{
			// url.Parse refuses the brace in a host, with no word
			// about the placeholder.
			name: "placeholder without its opening brace", template: "wss://8081-host}.e2b.app", host: "abc",
			wantErr: `bad url: "wss://8081-host}.e2b.app": the only placeholder is {host}, in lower case`,
		},
		{
			name: "credentials in url", template: "wss://me:secret@{host}.example", host: "abc",
			wantErr: `bad url: "wss://xxxxx@abc.example": credentials in the URL are not supported; use --token or --header`,
		},
	})
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		in, name, value string
		ok              bool
	}{
		{"e2b-traffic-access-token: TOKEN", "E2b-Traffic-Access-Token", "TOKEN", true},
		{"X-Api-Key:abc", "X-Api-Key", "abc", true},
		{"  x-a  :  spaced value  ", "X-A", "spaced value", true},
		{"X-Url: https://a.example:8443/x", "X-Url", "https://a.example:8443/x", true},
		{"X-Empty:", "X-Empty", "", true},
		{"novalue", "", "", false},
		{": value", "", "", false},
		{"bad name: v", "", "", false},
		{"Näme: v", "", "", false},
		{"X(A): v", "", "", false},
		{"X-A: a\r\nInjected: b", "", "", false},
		{"X-A: a\nb", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			name, value, err := client.ParseHeader(tt.in)
			if !tt.ok {
				if !errors.Is(err, client.ErrBadHeader) {
					t.Fatalf("ParseHeader(%q) = %q, %q, %v; want ErrBadHeader", tt.in, name, value, err)
				}
				return
			}
			if err != nil || name != tt.name || value != tt.value {
				t.Fatalf("ParseHeader(%q) = %q, %q, %v; want %q, %q", tt.in, name, value, err, tt.name, tt.value)
			}
		})
	}
}

func TestParseHeaderErrorText(t *testing.T) {
	_, _, err := client.ParseHeader("e2b-traffic-access-token")
	want := `bad header: "e2b-traffic-access-token" is not "Name: value" (e.g. --header 'e2b-traffic-access-token: TOKEN')`
	if err == nil || err.Error() != want {
		t.Fatalf("error text\n  %v\nwant\n  %s", err, want)
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"wss://8081-abc.e2b.app", "wss://8081-abc.e2b.app"},
		{"ws://127.0.0.1:8081/path", "ws://127.0.0.1:8081/path"},
		{"wss://user:secret@host.example/p", "wss://xxxxx@host.example/p"},
		{"wss://user@host.example", "wss://xxxxx@host.example"},
		{"wss://h.example/?token=secret&b=2", "wss://h.example/?b=xxxxx&token=xxxxx"},
		{"wss://u:p@h.example/x?access_token=t", "wss://xxxxx@h.example/x?access_token=xxxxx"},
		{"://no-scheme", "<unparsable url>"},
	}
	for _, tt := range tests {
		if got := client.RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := client.DefaultConfig()
	good.URL = "ws://127.0.0.1:8081"
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*client.Config)
		want error
	}{
		{"no url", func(c *client.Config) { c.URL = "" }, client.ErrBadURL},
		{"http url", func(c *client.Config) { c.URL = "http://127.0.0.1:8081" }, client.ErrBadURL},
		{"zero dial timeout", func(c *client.Config) { c.DialTimeout = 0 }, client.ErrInvalidConfig},
		{"token and authorization header", func(c *client.Config) {
			c.Token = "t"
			c.Header = map[string][]string{"Authorization": {"Bearer x"}}
		}, client.ErrInvalidConfig},
		{"bad mux config", func(c *client.Config) { c.Mux.MaxFrame = 1 }, mux.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mod(&c)
			if err := c.Validate(); !errors.Is(err, tt.want) {
				t.Fatalf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}
}
