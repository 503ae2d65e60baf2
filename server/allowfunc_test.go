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
	for hp, want := range map[string]bool{
		"127.0.0.1:2222":    true,
		"127.0.0.1:02222":   true,
		"DB.internal.:5432": true,
		"[0:0::1]:8080":     true,
		"127.0.0.1:22":      false,
		"10.0.0.1:5432":     false,
		"":                  false,
		"nonsense":          false,
	} {
		if got := allowed(hp); got != want {
			t.Errorf("allowed(%q) = %v, want %v", hp, got, want)
		}
	}
	if _, err := AllowFunc("127.0.0.1:22", []string{"no-port"}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("bad --allow: %v, want ErrInvalidConfig", err)
	}
}
