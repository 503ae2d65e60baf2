package main

import (
	"strings"
	"testing"
)

// A doctor refused at its url step by the environment (an HTTPS_PROXY
// that is not http://) was told to "correct the flag named above", where
// no flag was named.
func TestDoctorBadProxyEnvFix(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")
	t.Setenv("NO_PROXY", "")
	out, _, err := runApp(t, "doctor", "--url", "wss://sandbox.example", "x")
	if err == nil || !strings.Contains(out, "HTTPS_PROXY or HTTP_PROXY") || !strings.Contains(out, "\nfix: correct the flag or environment variable named above\n") {
		t.Fatalf("doctor with HTTPS_PROXY=socks5://…: err %v, output:\n%s", err, out)
	}
}
