package main

import (
	"testing"
)

// ALL_PROXY (curl's variable, where a SOCKS proxy is usually given) is
// used when no scheme-specific variable applies, and NO_PROXY still
// exempts a host from it by Go's rules for HTTPS_PROXY.
func TestProxyFromEnv(t *testing.T) {
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
		// The scheme's own variable first, upper case first, and
		// NO_PROXY for it too.
		{"https", "box.example.com", map[string]string{"HTTPS_PROXY": "http://s:3128", "ALL_PROXY": "socks5h://p"}, "http://s:3128"},
		{"https", "box.example.com", map[string]string{"https_proxy": "s:3128"}, "http://s:3128"},
		{"https", "box.example.com", map[string]string{"HTTPS_PROXY": "http://S", "https_proxy": "http://s"}, "http://S"},
		{"https", "box.example.com", map[string]string{"HTTP_PROXY": "http://h"}, ""},
		{"http", "box.example.com:8081", map[string]string{"HTTP_PROXY": "http://h", "HTTPS_PROXY": "http://s"}, "http://h"},
		{"https", "box.example.com", map[string]string{"HTTPS_PROXY": "http://s", "NO_PROXY": "example.com"}, ""},
		{"https", "localhost.", map[string]string{"HTTPS_PROXY": "http://s"}, ""},
		{"http", "box.example.com:8081", map[string]string{"HTTP_PROXY": "http://h", "REQUEST_METHOD": "GET"}, ""},
	} {
		scheme := map[string]string{"http": "ws", "https": "wss"}[tt.scheme]
		p, err := proxyFromEnv(scheme+"://"+tt.host+"/", func(k string) string { return tt.env[k] })
		got := ""
		if p != nil {
			got = p.String()
		}
		if err != nil || got != tt.want {
			t.Errorf("%s://%s with %v: proxy %q, %v; want %q", tt.scheme, tt.host, tt.env, got, err, tt.want)
		}
	}
}

// The environment is read at each call, so a process (cmd's tests, with
// t.Setenv) that changes it is answered by what it says now: net/http's
// ProxyFromEnvironment, used before, kept the first call's answer, so a
// test's HTTPS_PROXY leaked into every later test that dialled a server
// off loopback, and this one failed at its second proxy.
func TestProxyEnvReadAtEachCall(t *testing.T) {
	const server = "wss://box.example.com"
	t.Setenv("ALL_PROXY", "")
	t.Setenv("NO_PROXY", "")
	for _, tt := range []struct{ https, noProxy, want string }{
		{"http://first:3128", "", "http://first:3128"},
		{"http://second:3128", "", "http://second:3128"},
		{"http://second:3128", "example.com", ""},
		{"", "", ""},
	} {
		t.Setenv("HTTPS_PROXY", tt.https)
		t.Setenv("NO_PROXY", tt.noProxy)
		p, err := proxyFor(server)
		got := ""
		if p != nil {
			got = p.String()
		}
		if err != nil || got != tt.want {
			t.Errorf("HTTPS_PROXY=%q NO_PROXY=%q: proxy %q, %v; want %q", tt.https, tt.noProxy, got, err, tt.want)
		}
	}
}
