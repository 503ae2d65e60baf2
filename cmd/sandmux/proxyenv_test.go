package main

import (
	"testing"
)

// ALL_PROXY (curl's variable, where a SOCKS proxy is usually given) is
// used when no scheme-specific variable applies, and NO_PROXY still
// exempts a host from it by Go's rules for HTTPS_PROXY.
func TestAllProxyFor(t *testing.T) {
	for _, tt := range []struct {
		scheme, host string
		env          map[string]string
		want         string
	}{
		{"https", "box.example.com", map[string]string{}, ""},
		{"https", "box.example.com", map[string]string{"ALL_PROXY": "socks5h://127.0.0.1:1080"}, "socks5h://127.0.0.1:1080"},
		{"http", "box.example.com:8081", map[string]string{"all_proxy": "socks5://u:p@127.0.0.1"}, "socks5://u:p@127.0.0.1"},
		{"https", "box.example.com", map[string]string{"ALL_PROXY": "proxy.corp:3128"}, "http://proxy.corp:3128"},
		{"https", "box.example.com", map[string]string{"ALL_PROXY": "socks5h://p", "all_proxy": "socks5h://q"}, "socks5h://p"},
		// Loopback is never proxied.
		{"http", "localhost:8081", map[string]string{"ALL_PROXY": "socks5h://p"}, ""},
		{"http", "127.0.0.1:8081", map[string]string{"ALL_PROXY": "socks5h://p"}, ""},
		{"http", "[::1]:8081", map[string]string{"ALL_PROXY": "socks5h://p"}, ""},
		// NO_PROXY wins.
		{"https", "box.example.com", map[string]string{"ALL_PROXY": "socks5h://p", "NO_PROXY": "*"}, ""},
		{"https", "box.example.com", map[string]string{"ALL_PROXY": "socks5h://p", "no_proxy": "other.org, example.com"}, ""},
		{"https", "example.com", map[string]string{"ALL_PROXY": "socks5h://p", "NO_PROXY": "example.com"}, ""},
		{"https", "example.com", map[string]string{"ALL_PROXY": "socks5h://p", "NO_PROXY": ".example.com"}, "socks5h://p"},
		{"https", "box.example.com", map[string]string{"ALL_PROXY": "socks5h://p", "NO_PROXY": "*.example.com"}, ""},
		{"https", "notexample.com", map[string]string{"ALL_PROXY": "socks5h://p", "NO_PROXY": "example.com"}, "socks5h://p"},
		{"https", "box.example.com", map[string]string{"ALL_PROXY": "socks5h://p", "NO_PROXY": "box.example.com:443"}, ""},
		{"http", "box.example.com:8081", map[string]string{"ALL_PROXY": "socks5h://p", "NO_PROXY": "box.example.com:443"}, "socks5h://p"},
		{"http", "10.1.2.3:8081", map[string]string{"ALL_PROXY": "socks5h://p", "NO_PROXY": "10.0.0.0/8"}, ""},
		{"http", "10.1.2.3:8081", map[string]string{"ALL_PROXY": "socks5h://p", "NO_PROXY": "10.1.2.3"}, ""},
		{"http", "[fd00::1]:8081", map[string]string{"ALL_PROXY": "socks5h://p", "NO_PROXY": "[fd00::1]:8081"}, ""},
		{"http", "10.1.2.4:8081", map[string]string{"ALL_PROXY": "socks5h://p", "NO_PROXY": "10.1.2.3"}, "socks5h://p"},
	} {
		p, err := allProxyFor(tt.scheme, tt.host, func(k string) string { return tt.env[k] })
		got := ""
		if p != nil {
			got = p.String()
		}
		if err != nil || got != tt.want {
			t.Errorf("%s://%s with %v: proxy %q, %v; want %q", tt.scheme, tt.host, tt.env, got, err, tt.want)
		}
	}
}
