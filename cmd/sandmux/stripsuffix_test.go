package main

import (
	"strings"
	"testing"

	"github.com/sandmux/sandmux/internal/testutil"
)

func TestStripHostSuffix(t *testing.T) {
	for _, tc := range []struct{ host, suffix, want string }{
		{"abc.e2b", ".e2b", "abc"},
		{"abc", ".e2b", "abc"},
		{"abc.e2b", "", "abc.e2b"},
		// ssh passes %h in lower case; a `Host *.SBX` block strips ".SBX".
		{"abc.sbx", ".SBX", "abc"},
		{"ABC.E2B", ".e2b", "ABC"},
		// A fully qualified name, as `ssh abc.e2b.` passes it.
		{"abc.e2b.", ".e2b", "abc"},
		// A suffix without its dot leaves none behind.
		{"abc.e2b", "e2b", "abc"},
		{"abc-e2b", "-e2b", "abc"},
		{"abc.e2b.e2b", ".e2b", "abc.e2b"},
		{".e2b", ".e2b", ""},
		{"e2b", ".e2b", "e2b"},
	} {
		got, err := stripHostSuffix(tc.host, tc.suffix)
		if err != nil || got != tc.want {
			t.Errorf("stripHostSuffix(%q, %q) = %q, %v; want %q", tc.host, tc.suffix, got, err, tc.want)
		}
	}
	if _, err := stripHostSuffix("abc.e2b", "*.e2b"); err == nil || !strings.Contains(err.Error(), "--strip-suffix .e2b") {
		t.Errorf("a suffix copied from the Host pattern: %v, want a line naming --strip-suffix .e2b", err)
	}
}

// The block `sandmux ssh-config --host-pattern '*.SBX'` writes reaches
// the sandbox: ssh matches the pattern as typed (ABC.SBX) but passes %h
// lower-cased, and the proxy used to dial ws://…/abc.sbx.
func TestProxyStripsSuffixOfAnyCase(t *testing.T) {
	addr := testutil.FreeAddr(t)
	_, _, err := runApp(t, "proxy", "--no-agent", "--strip-suffix", ".SBX", "--url", "ws://"+addr+"/{host}", "abc.sbx")
	if err == nil || !strings.Contains(err.Error(), "ws://"+addr+"/abc:") {
		t.Fatalf("proxy dialled %v, want ws://%s/abc", err, addr)
	}
	_, _, err = runApp(t, "proxy", "--no-agent", "--strip-suffix", "*.sbx", "abc.sbx")
	if err == nil || !strings.Contains(err.Error(), "without wildcards") {
		t.Fatalf("--strip-suffix '*.sbx': %v, want the wildcard refused", err)
	}
}
