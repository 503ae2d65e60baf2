package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A doctor refused at its url step by the environment (an HTTPS_PROXY
// that is neither http(s):// nor socks5://) was told to "correct the flag named above", where
// no flag was named.
func TestDoctorBadProxyEnvFix(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "socks4://127.0.0.1:3128")
	t.Setenv("NO_PROXY", "")
	out, _, err := runApp(t, "doctor", "--url", "wss://sandbox.example", "x")
	if err == nil || !strings.Contains(out, "HTTPS_PROXY, HTTP_PROXY or ALL_PROXY") || !strings.Contains(out, "\nfix: correct the flag or environment variable named above\n") {
		t.Fatalf("doctor with HTTPS_PROXY=socks4://…: err %v, output:\n%s", err, out)
	}
}

// A server that wants a token, asked without one: the fix names every
// way to give it, --token-file first, as `proxy --help` and SECURITY.md
// prefer it to --token (which ps shows); it named --token and
// SANDMUX_TOKEN only, unlike the wrong token's fix and the proxy's line.
func TestDoctorMissingTokenFix(t *testing.T) {
	t.Setenv("SANDMUX_TOKEN", "")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	out, _, err := runApp(t, "doctor", "--probe", "0", "--url", "ws://"+strings.TrimPrefix(srv.URL, "http://"), "x")
	want := "\nfix: pass the token `sandmux server` was started with: --token-file FILE, SANDMUX_TOKEN or --token TOKEN\n"
	if err == nil || !strings.Contains(out, want) {
		t.Fatalf("doctor without a token against a 401: err %v, want %q in:\n%s", err, want, out)
	}
}
