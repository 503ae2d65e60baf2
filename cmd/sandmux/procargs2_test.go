package main

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

// macOS has no /proc: a background forward's command line comes from
// kern.procargs2, whose environment must not count as arguments.
func TestParseProcArgs2(t *testing.T) {
	buf := binary.NativeEndian.AppendUint32(nil, 3)
	buf = append(buf, "/opt/homebrew/bin/sandmux\x00\x00\x00\x00"...)
	buf = append(buf, "sandmux\x00forward\x00--background-child\x00"...)
	buf = append(buf, "HOME=/Users/me\x00X=--background-child\x00"...)
	got, err := parseProcArgs2(buf)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"sandmux", "forward", "--background-child"}; !slices.Equal(got, want) {
		t.Fatalf("parseProcArgs2 = %q, want %q", got, want)
	}

	// The environment alone does not make a forward.
	env := binary.NativeEndian.AppendUint32(nil, 1)
	env = append(env, "/bin/zsh\x00\x00zsh\x00X=--background-child\x00"...)
	if got, err := parseProcArgs2(env); err != nil || slices.Contains(got, "--background-child") {
		t.Fatalf("parseProcArgs2 = %q, %v: an environment variable taken for an argument", got, err)
	}

	for _, bad := range [][]byte{nil, {1, 0}, binary.NativeEndian.AppendUint32(nil, 2)} {
		if _, err := parseProcArgs2(bad); !errors.Is(err, errProcArgs2) {
			t.Errorf("parseProcArgs2(%q) error %v, want %v", bad, err, errProcArgs2)
		}
	}
}
