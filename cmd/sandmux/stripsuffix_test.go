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

// A HOST typed as for ssh ("abc.e2b") with a --url that adds ".e2b"
// itself gets a hint; a bare id, a --strip-suffix or a suffix the
// template does not repeat gets none.
func TestDoubledSuffixHint(t *testing.T) {
	for _, tt := range []struct {
		tmpl, host, strip string
		want              string
	}{
		{"", "abc.e2b", "", "HOST abc.e2b ends in .e2b, which --url adds again: give the sandbox id alone (abc) or add --strip-suffix .e2b"},
		{"wss://8081-{host}.E2B.app", "abc.e2b.", "", "HOST abc.e2b. ends in .e2b, which --url adds again: give the sandbox id alone (abc) or add --strip-suffix .e2b"},
		{"ws://127.0.0.1:1/{host}.x", "abc.x", "", "HOST abc.x ends in .x, which --url adds again: give the sandbox id alone (abc) or add --strip-suffix .x"},
		{"", "abc", "", ""},
		{"", "abc.e2b", ".e2b", ""},
		{"wss://{host}.e2bx.app", "abc.e2b", "", ""},
		{"wss://{host}:8081", "abc.e2b", "", ""},
		{"wss://127.0.0.1:9/{host}", "abc.sbx", "", ""},
		{"", ".e2b", "", ""},
	} {
		if got := doubledSuffixHint(tt.tmpl, tt.host, tt.strip); got != tt.want {
			t.Errorf("doubledSuffixHint(%q, %q, %q) = %q, want %q", tt.tmpl, tt.host, tt.strip, got, tt.want)
		}
	}
}

// `sandmux doctor abc.x` and `sandmux proxy abc.x`, with a --url that adds
// ".x" again, say so: the doctor's url step warns and its fix is the
// hint, and the proxy's failure line carries it.
func TestDoubledSuffixIsTold(t *testing.T) {
	url := "ws://127.0.0.1:1/{host}.x" // port 1: refused at once
	out, _, err := runApp(t, "doctor", "--url", url, "--timeout", "5s", "abc.x")
	const hint = "HOST abc.x ends in .x, which --url adds again: give the sandbox id alone (abc) or add --strip-suffix .x"
	if err == nil || !strings.Contains(out, "WARN  url ") || !strings.Contains(out, "\nfix: "+hint+"\n") {
		t.Errorf("doctor: err %v, output:\n%s\nwant a warning and the fix %q", err, out, hint)
	}
	_, _, err = runApp(t, "proxy", "--no-agent", "--url", url, "abc.x")
	if err == nil || !strings.HasSuffix(err.Error(), "("+hint+")") {
		t.Errorf("proxy: error %v, want it to end with the hint", err)
	}
}
