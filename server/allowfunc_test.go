package server

import (
	"errors"
	"testing"
)

func TestAllowFunc(t *testing.T) {
	allowed, err := AllowFunc("127.0.0.1:2222", []string{"db.internal:5432", "[::1]:8080"})
	if err != nil {
		t.Fatal(err)
	}
	// An allowed target is dialled in its canonical form, as the server
	// dials a stream's: "127.0.0.1.:2222" as written would go to DNS.
	for hp, want := range map[string]string{
		"127.0.0.1:2222":    "127.0.0.1:2222",
		"127.0.0.1:02222":   "127.0.0.1:2222",
		"127.0.0.1.:2222":   "127.0.0.1:2222",
		"DB.internal.:5432": "db.internal:5432",
		"[0:0::1]:8080":     "[::1]:8080",
		"127.0.0.1:22":      "",
		"10.0.0.1:5432":     "",
		"":                  "",
		"nonsense":          "",
	} {
		if got, ok := allowed(hp); ok != (want != "") || (ok && got != want) {
			t.Errorf("allowed(%q) = %q, %v; want %q", hp, got, ok, want)
		}
	}
	if _, err := AllowFunc("127.0.0.1:22", []string{"no-port"}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("bad --allow: %v, want ErrInvalidConfig", err)
	}
}
