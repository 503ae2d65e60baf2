//go:build linux

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBashCompletionAddsASpace: in an interactive bash, a completed
// command name, flag or file name is followed by a space, as with any
// other command, and a directory by its slash alone. The script was
// registered with -o nospace (as urfave/cli's template is), so `sandmux
// prox<TAB>` gave `sandmux proxy` and the next word ran into it.
func TestBashCompletionAddsASpace(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "certs"), 0o700); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, time.Minute)
	cmd := exec.CommandContext(ctx, bash, "--norc", "--noprofile", "-i")
	cmd.Dir = dir
	cmd.Env = childEnv("PATH="+filepath.Dir(sandmuxBin)+":"+os.Getenv("PATH"), "TERM=dumb", "INPUTRC=/dev/null", "PS1=$ ", "HISTFILE=/dev/null")
	tm := startOnTerminal(t, cmd, 24, 200)
	out := &tm.out
	type_ := func(s string) { tm.type_(t, s) }
	// expect waits for one of the texts in the output and says which.
	expect := func(what string, texts ...string) string {
		t.Helper()
		var found string
		ok, _ := pollUntil(20*time.Second, func() (bool, string) {
			for _, s := range texts {
				if strings.Contains(out.String(), s) {
					found = s
					return true, ""
				}
			}
			return false, ""
		})
		if !ok {
			t.Fatalf("%s: none of %q in the terminal:\n%q", what, texts, out.String())
		}
		return found
	}
	// The quotes keep the typed line's echo from matching.
	type_("source <(sandmux completion bash); echo 'loa''ded'\n")
	expect("the script loaded", "loaded\r\n")
	for _, tt := range []struct{ typed, want, wrong string }{
		{"sandmux prox", "sandmux proxy Q", "sandmux proxyQ"},
		{"sandmux forward --no-a", "--no-agent Q", "--no-agentQ"},
		{"sandmux proxy --ca ca.p", "--ca ca.pem Q", "--ca ca.pemQ"},
		{"sandmux proxy --ca cer", "--ca certs/Q", "--ca certs/ Q"},
	} {
		// Tab, then a letter: readline reads the letter once the
		// completion is done, and the terminal shows where it went.
		type_(tt.typed + "\tQ")
		if got := expect(tt.typed+"<TAB>", tt.want, tt.wrong); got != tt.want {
			t.Errorf("%s<TAB>: %q, want %q", tt.typed, got, tt.want)
		}
		type_("\x15") // ^U: the line is gone, for the next one
	}
}
