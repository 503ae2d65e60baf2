package agent

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/sandmux/sandmux/client"
)

// What sets a session apart is named, never shown.
func TestSessionOptions(t *testing.T) {
	cfg := client.DefaultConfig()
	if got := sessionOptions(cfg); len(got) != 0 {
		t.Fatalf("defaults: %q, want none", got)
	}
	cfg.Token = "s3cret"
	cfg.Header = http.Header{"X-B": {"v1"}, "E2b-Traffic-Access-Token": {"v2"}}
	cfg.TLS = &tls.Config{InsecureSkipVerify: true, RootCAs: x509.NewCertPool()} //nolint:gosec // a test of the name only
	cfg.Resume.Grace = time.Minute
	want := []string{"token", "header E2b-Traffic-Access-Token", "header X-B", "insecure", "ca", "resume timeout 1m0s"}
	if got := sessionOptions(cfg); !slices.Equal(got, want) {
		t.Fatalf("options %q, want %q", got, want)
	}
	cfg.NoResume = true
	if got := sessionOptions(cfg); got[len(got)-1] != "no resume" {
		t.Fatalf("options %q, want no resume last", got)
	}
}
