package main

import (
	"bytes"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runApp runs the CLI in this process and returns its stdout, stderr and
// error.
func runApp(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	app := newApp()
	var out, errb bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errb
	err := app.Run(append([]string{"sandmux"}, args...))
	return out.String(), errb.String(), err
}

// `sandmux --version` prints what `sandmux version` does.
func TestVersionFlag(t *testing.T) {
	flag, _, err := runApp(t, "--version")
	if err != nil {
		t.Fatal(err)
	}
	cmd, _, err := runApp(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	if flag != cmd || flag != "sandmux "+version+" ("+commit+")\n" {
		t.Fatalf("--version printed %q, version %q", flag, cmd)
	}
}
