package client_test

import (
	"testing"

	"github.com/sandmux/sandmux/client"
)

// ssh passes %h as typed: `ssh ::1` gives "::1", `ssh [::1]` and
// `ssh user@[::1]` give "[::1]". Either fills a {host} that is the
// URL's whole host, in the brackets a URL's IPv6 address needs, and
// nothing else: an address cannot become part of a name, a port, a
// path or credentials.
func TestExpandURLIPv6Host(t *testing.T) {
	checkExpand(t, []expandCase{
		{name: "bare placeholder, bare address", template: "ws://{host}:8081", host: "::1", want: "ws://[::1]:8081"},
		{name: "bare placeholder, bracketed address", template: "ws://{host}:8081", host: "[::1]", want: "ws://[::1]:8081"},
		{name: "bracketed placeholder", template: "ws://[{host}]:8081", host: "::1", want: "ws://[::1]:8081"},
		{name: "bracketed placeholder and address", template: "ws://[{host}]:8081", host: "[::1]", want: "ws://[::1]:8081"},
		{name: "no port, a path", template: "wss://{host}/tunnel?x=1", host: "::1", want: "wss://[::1]/tunnel?x=1"},
		{name: "canonical form", template: "ws://{host}:8081", host: "0:0:0::0001", want: "ws://[::1]:8081"},
		{name: "upper case", template: "ws://{host}:8081", host: "FE80::A", want: "ws://[fe80::a]:8081"},
		{name: "IPv4-mapped", template: "ws://{host}:8081", host: "::ffff:127.0.0.1", want: "ws://[::ffff:127.0.0.1]:8081"},
		{name: "zone", template: "ws://{host}:8081", host: "fe80::1%eth0", want: "ws://[fe80::1%25eth0]:8081"},
		{name: "zone, bracketed", template: "ws://[{host}]:8081", host: "[fe80::1%lo]", want: "ws://[fe80::1%25lo]:8081"},
		{
			name: "inside a name", template: client.DefaultURLTemplate, host: "::1",
			wantErr: "bad url: host \"::1\" is an IPv6 address, which can fill only a {host} that is the URL's whole host, as in ws://{host}:8081 or ws://[{host}]:8081, not \"wss://8081-{host}.e2b.app\"",
		},
		{
			name: "in the path too", template: "ws://{host}:8081/{host}", host: "::1",
			wantErr: "bad url: host \"::1\" is an IPv6 address, which can fill only a {host} that is the URL's whole host, as in ws://{host}:8081 or ws://[{host}]:8081, not \"ws://{host}:8081/{host}\"",
		},
		{
			name: "only in the path", template: "ws://127.0.0.1:8081/{host}", host: "::1",
			wantErr: "bad url: host \"::1\" is an IPv6 address, which can fill only a {host} that is the URL's whole host, as in ws://{host}:8081 or ws://[{host}]:8081, not \"ws://127.0.0.1:8081/{host}\"",
		},
		{
			name: "as credentials", template: "ws://{host}@127.0.0.1:8081", host: "::1",
			wantErr: "bad url: host \"::1\" is an IPv6 address, which can fill only a {host} that is the URL's whole host, as in ws://{host}:8081 or ws://[{host}]:8081, not \"ws://{host}@127.0.0.1:8081\"",
		},
		{
			name: "half bracketed", template: "ws://[{host}:8081", host: "::1",
			wantErr: "bad url: host \"::1\" is an IPv6 address, which can fill only a {host} that is the URL's whole host, as in ws://{host}:8081 or ws://[{host}]:8081, not \"ws://[{host}:8081\"",
		},
		{
			name: "with a port", template: "ws://{host}:8081", host: "[::1]:22",
			wantErr: "bad url: host \"[::1]:22\" is not a plain host name (pass the sandbox id, e.g. `sandmux proxy abc123`)",
		},
		{
			name: "one bracket", template: "ws://{host}:8081", host: "[::1",
			wantErr: "bad url: host \"[::1\" is not a plain host name (pass the sandbox id, e.g. `sandmux proxy abc123`)",
		},
		{
			name: "zone with a path", template: "ws://{host}:8081", host: "fe80::1%eth0/x",
			wantErr: "bad url: host \"fe80::1%eth0/x\" is not a plain host name (pass the sandbox id, e.g. `sandmux proxy abc123`)",
		},
		{name: "numeric zone", template: "ws://{host}:8081", host: "fe80::1%25", want: "ws://[fe80::1%2525]:8081"},
		{
			name: "zone with an escape", template: "ws://{host}:8081", host: "fe80::1%%41",
			wantErr: "bad url: host \"fe80::1%%41\" is not a plain host name (pass the sandbox id, e.g. `sandmux proxy abc123`)",
		},
		{
			name: "IPv4 address in brackets", template: "ws://{host}:8081", host: "[127.0.0.1]",
			wantErr: "bad url: host \"[127.0.0.1]\" is not a plain host name (pass the sandbox id, e.g. `sandmux proxy abc123`)",
		},
	})
}
