//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sandmux/sandmux/internal/sshtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// logWriter sends the harness's progress lines to t.Log.
type logWriter struct {
	mu sync.Mutex
	t  *testing.T
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestHarness runs every scenario at tiny sizes so the harness cannot rot.
// It checks that the table and the JSON are produced and name every
// scenario, and that no scenario failed; it never judges a figure, since
// a test machine's speed says nothing about sandmux.
func TestHarness(t *testing.T) {
	// sshtest.Require's semantics: without OpenSSH the scp and set-up
	// scenarios are skipped locally (their rows say so), while CI=true
	// fails here.
	haveSSH := false
	t.Run("openssh", func(t *testing.T) {
		sshtest.Require(t, "sshd", "ssh", "scp", "ssh-keygen")
		haveSSH = true
	})
	if t.Failed() {
		return
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	// A hang guard only, which ends the run with a report rather than
	// go test's panic at -timeout (make test: 12m): on a busy 2-core
	// machine the run takes 1-2 min, but starved of CPU (nice 19 under
	// a load average of 14) scp at 10 ms RTT crawled at 0.1 MiB/s, ssh
	// direct too, and one run hit the 4 min this guard used to allow.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	start := time.Now()
	// make test passes the binary `make build` made, which is the one
	// the harness would build (same tags, -trimpath, CGO off).
	bin := os.Getenv("SANDMUX_TEST_BIN")
	rep, err := run(ctx, Options{Mode: "tiny", Settings: tinySettings(), Bin: bin, Root: root, Progress: &logWriter{t: t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("harness took %v", time.Since(start).Round(time.Millisecond))

	var md bytes.Buffer
	rep.Markdown(&md)
	t.Log("\n" + md.String())
	path := filepath.Join(t.TempDir(), "out", "latest.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("JSON does not parse back: %v", err)
	}

	if !strings.Contains(md.String(), "| # | scenario | case | peer | figure | ratio | target | met |") {
		t.Error("markdown has no table header")
	}
	for _, sc := range scenarios {
		rows := 0
		for _, r := range got.Rows {
			if r.Scenario != sc.id {
				continue
			}
			rows++
			switch {
			case r.Error == "" && r.Figure == "":
				t.Errorf("scenario %d %s / %s: no figure and no error", sc.id, r.Case, r.Peer)
			case r.Error != "" && !(r.Skipped && !haveSSH):
				t.Errorf("scenario %d %s / %s failed: %s", sc.id, r.Case, r.Peer, r.Error)
			}
		}
		if rows == 0 {
			t.Errorf("scenario %d (%s) is missing from the JSON", sc.id, sc.name)
		}
		if !strings.Contains(md.String(), fmt.Sprintf("| %d | %s |", sc.id, sc.name)) {
			t.Errorf("scenario %d (%s) is missing from the table", sc.id, sc.name)
		}
	}
	if len(got.Notes) == 0 || !strings.Contains(strings.Join(got.Notes, "\n"), "websocat") {
		t.Error("the report does not say whether websocat was measured")
	}
}
