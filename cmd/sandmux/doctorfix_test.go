package main

import (
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
