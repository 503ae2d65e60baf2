package main

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/sandmux/sandmux/internal/testutil"
	"github.com/sandmux/sandmux/server"
)

// TestWarnFewDescriptors: a server whose limits let clients hold more
// file descriptors than the process may open says so once at start-up;
// the defaults need fewer than the usual hard limits (65,536, 1,048,576).
func TestWarnFewDescriptors(t *testing.T) {
	cfg := server.DefaultConfig()
	if need := descriptorsNeeded(cfg); need > 65536 {
		t.Fatalf("the default limits need %d descriptors", need)
	}
	for _, tc := range []struct {
		limit uint64
		known bool
		warns bool
	}{
		{1024, true, true},
		{1 << 20, true, false},
		{0, false, false},
	} {
		var logs testutil.Buffer
		warnFewDescriptors(slog.New(slog.NewTextHandler(&logs, nil)), cfg, tc.limit, tc.known)
		if got := strings.Contains(logs.String(), "the file descriptor limit is below what clients may make the server hold"); got != tc.warns {
			t.Fatalf("limit %d (known %v): warned %v, want %v:\n%s", tc.limit, tc.known, got, tc.warns, logs.String())
		}
	}
}
