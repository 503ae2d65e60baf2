package main

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sandmux/sandmux/client"
	"github.com/sandmux/sandmux/mux"
)

// A session that could not be resumed names a doctor command to check
// the sandbox with, and that command checks the URL the session dialled.
// It named `sandmux doctor abc.e2b`, ssh's %h, which without the block's
// --strip-suffix and --url dialled wss://8081-abc.e2b.e2b.app and
// failed at DNS, as if the sandbox id were wrong.
func TestResumeHintDoctorDialsTheSessionsURL(t *testing.T) {
	t.Setenv("SANDMUX_URL", "")
	t.Setenv("SANDMUX_STRIP_SUFFIX", "")
	const url = "ws://127.0.0.1:1/abc"
	err := client.StreamEndError(&mux.NotResumedError{Within: time.Second, Cause: io.EOF}, "abc.e2b", url)
	_, hint, ok := strings.Cut(err.Error(), "(`sandmux ")
	if !ok {
		t.Fatalf("no doctor command in %q", err)
	}
	hint, _, _ = strings.Cut(hint, "`")
	args := strings.Fields(strings.ReplaceAll(hint, "'", ""))
	if len(args) == 0 || args[0] != "doctor" {
		t.Fatalf("the hint's command is %q, want sandmux doctor", hint)
	}
	args = append([]string{"doctor", "--json", "--probe", "0", "--timeout", "1s"}, args[1:]...)
	out, _, _ := runApp(t, args...)
	var rep struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("sandmux %s printed %q: %v", strings.Join(args, " "), out, err)
	}
	if rep.URL != url {
		t.Errorf("`sandmux %s` (from %q) checks %s, want the session's %s", hint, err, rep.URL, url)
	}
}
