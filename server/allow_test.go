package server

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

func TestCanonicalTarget(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"127.0.0.1:22", "127.0.0.1:22", true},
		{"127.0.0.1:022", "127.0.0.1:22", true},
		{"127.0.0.1:00022", "127.0.0.1:22", true},
		{"127.0.0.1:65535", "127.0.0.1:65535", true},
		{"[::1]:22", "[::1]:22", true},
		{"[0:0::1]:22", "[::1]:22", true},
		{"[0000:0000:0000:0000:0000:0000:0000:0001]:22", "[::1]:22", true},
		{"[::FFFF:127.0.0.1]:22", "127.0.0.1:22", true},
		{"[2001:DB8::1]:443", "[2001:db8::1]:443", true},
		{"LOCALHOST:22", "localhost:22", true},
		{"Db.Internal:5432", "db.internal:5432", true},
		{"example.com.:443", "example.com:443", true},
		// Rejected: no port, bad ports, no host.
		{"127.0.0.1", "", false},
		{"[::1]", "", false},
		{"::1:22", "", false},
		{"127.0.0.1:", "", false},
		{"127.0.0.1:0", "", false},
		{"127.0.0.1:65536", "", false},
		{"127.0.0.1:99999999999", "", false},
		{"127.0.0.1:-1", "", false},
		{"127.0.0.1:+22", "", false},
		{"127.0.0.1:0x16", "", false},
		{"127.0.0.1:ssh", "", false},
		{"127.0.0.1: 22", "", false},
		{":22", "", false},
		{".:22", "", false},
		{"0..:1", "", false},
		{"a..b:1", "", false},
		{".a:1", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := canonicalTarget(tt.in)
			if !tt.ok {
				if err == nil {
					t.Fatalf("canonicalTarget(%q) = %q, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("canonicalTarget(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestCanonicalTargetSameTarget: spellings of one target are one target.
func TestCanonicalTargetSameTarget(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"127.0.0.1:022", "127.0.0.1:22", true},
		{"[::1]:22", "[0:0::1]:22", true},
		{"[::1]:22", "[::1]:022", true},
		{"LOCALHOST:22", "localhost:22", true},
		{"[::ffff:127.0.0.1]:22", "127.0.0.1:22", true},
		{"127.0.0.1:22", "127.0.0.2:22", false},
		{"[::1]:22", "127.0.0.1:22", false},
		{"localhost:22", "127.0.0.1:22", false}, // names are not resolved
		{"127.0.0.1:22", "127.0.0.1:2222", false},
	}
	for _, tt := range tests {
		a, erra := canonicalTarget(tt.a)
		b, errb := canonicalTarget(tt.b)
		if erra != nil || errb != nil {
			t.Fatalf("canonicalTarget(%q), (%q): %v, %v", tt.a, tt.b, erra, errb)
		}
		if (a == b) != tt.same {
			t.Errorf("%q -> %q and %q -> %q: same = %v, want %v", tt.a, a, tt.b, b, a == b, tt.same)
		}
	}
}

func TestAllowlistResolve(t *testing.T) {
	a, err := newAllowlist("127.0.0.1:0022", []string{"[0:0::1]:22", "DB.internal:5432"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		requested, want string
		ok              bool
	}{
		{"", "127.0.0.1:22", true},
		{"127.0.0.1:22", "127.0.0.1:22", true},
		{"127.0.0.1:022", "127.0.0.1:22", true},
		{"[::1]:22", "[::1]:22", true},
		{"[0::1]:0022", "[::1]:22", true},
		{"db.INTERNAL:05432", "db.internal:5432", true},
		{"db.internal.:5432", "db.internal:5432", true},
		{"10.0.0.1:5432", "10.0.0.1:5432", false},
		{"[::1]:2222", "[::1]:2222", false},
		{"127.0.0.1:0", "127.0.0.1:0", false},
		{"garbage", "garbage", false},
	}
	for _, tt := range tests {
		got, ok := a.resolve(tt.requested)
		if got != tt.want || ok != tt.ok {
			t.Errorf("resolve(%q) = %q, %v; want %q, %v", tt.requested, got, ok, tt.want, tt.ok)
		}
	}
}

func TestNewAllowlistRejects(t *testing.T) {
	tests := []struct {
		def   string
		allow []string
	}{
		{"127.0.0.1", nil},
		{"127.0.0.1:22", []string{"127.0.0.1:22", "127.0.0.1:0"}},
		{"127.0.0.1:22", []string{":5432"}},
		{"127.0.0.1:22", []string{"*:22"}}, // a pattern would never match
		// Nor would a range or a host no resolver takes: each would be
		// a name that no stream's target ever meets.
		{"127.0.0.1:22", []string{"10.0.0.0/8:22"}},
		{"10.0.0.0/8:22", nil},
		{"127.0.0.1:22", []string{"db internal:5432"}},
		{"127.0.0.1:22", []string{"user@db:5432"}},
	}
	for _, tt := range tests {
		if _, err := newAllowlist(tt.def, tt.allow); err == nil {
			t.Errorf("newAllowlist(%q, %q) succeeded", tt.def, tt.allow)
		}
		cfg := DefaultConfig()
		cfg.Target, cfg.Allow = tt.def, tt.allow
		if err := cfg.Validate(); err == nil {
			t.Errorf("Config{Target: %q, Allow: %q}.Validate() succeeded", tt.def, tt.allow)
		}
	}
}

// TestAllowRangeSaysSo: an operator who writes a CIDR range hears that
// ranges are not taken, rather than having a server that starts and
// then refuses every stream to the addresses they meant.
func TestAllowRangeSaysSo(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Allow = []string{"10.0.0.0/8:22"}
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "address ranges are not supported") {
		t.Fatalf("Validate() = %v; want it to say that address ranges are not supported", err)
	}
	for _, ok := range []string{"db_1.internal:5432", "[fe80::1%eth0]:22", "DB-2:22", "0.0.0.0:8080"} {
		cfg.Allow = []string{ok}
		if err := cfg.Validate(); err != nil {
			t.Errorf("--allow %s: %v", ok, err)
		}
	}
}

// FuzzCanonicalTarget: what canonicalTarget accepts is HOST:PORT with a
// host and a port from 1 to 65535, and is its own canonical form, so an
// allowlist entry and a request for the same target always meet.
func FuzzCanonicalTarget(f *testing.F) {
	for _, s := range []string{"127.0.0.1:22", "[::1]:22", "Db.Internal.:5432", ".:22", ":22", "[fe80::1%eth0]:22"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := canonicalTarget(s)
		if err != nil {
			return
		}
		host, port, err := net.SplitHostPort(c)
		if err != nil || host == "" {
			t.Fatalf("canonicalTarget(%q) = %q: not HOST:PORT with a host (%v)", s, c, err)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			t.Fatalf("canonicalTarget(%q) = %q: port %q", s, c, port)
		}
		if again, err := canonicalTarget(c); err != nil || again != c {
			t.Fatalf("canonicalTarget(%q) = %q, but canonicalTarget(%q) = %q, %v", s, c, c, again, err)
		}
	})
}
