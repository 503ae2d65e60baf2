package sshd

import (
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/sandmux/sandmux/internal/testutil"
)

// The client terminal's modes reach the program's terminal: its erase
// and interrupt characters, a disabled character, echo off, a speed.
func TestEmbeddedTerminalModes(t *testing.T) {
	t.Parallel()
	f := start(t, nil)
	s := newSession(t, f.client(t))
	modes := ssh.TerminalModes{
		ssh.VERASE: 8, ssh.VINTR: 7, ssh.VQUIT: 255, ssh.ECHO: 0, ssh.ICRNL: 0,
		ssh.TTY_OP_ISPEED: 9600, ssh.TTY_OP_OSPEED: 9600,
	}
	if err := s.RequestPty("xterm", 24, 80, modes); err != nil {
		t.Fatalf("pty-req: %v", err)
	}
	var out testutil.Buffer
	s.Stdout = &out
	if err := s.Run("stty -a"); err != nil {
		t.Fatalf("stty -a: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{"speed 9600 baud", "intr = ^G", "erase = ^H", "quit = <undef>", "-echo ", "-icrnl"} {
		if !strings.Contains(got, want) {
			t.Errorf("stty -a lacks %q:\n%s", want, got)
		}
	}
}

func TestParseTermModes(t *testing.T) {
	enc := func(ms ...termMode) []byte {
		var b []byte
		for _, m := range ms {
			b = append(b, m.op, byte(m.value>>24), byte(m.value>>16), byte(m.value>>8), byte(m.value))
		}
		return b
	}
	for _, c := range []struct {
		name string
		in   []byte
		want []termMode
	}{
		{"empty", nil, nil},
		{"end", append(enc(termMode{53, 1}), ttyOpEnd), []termMode{{53, 1}}},
		{"modes after the end are ignored", append(append(enc(termMode{53, 1}), ttyOpEnd), enc(termMode{51, 0})...), []termMode{{53, 1}}},
		{"an undefined opcode stops", append(enc(termMode{3, 8}), enc(termMode{200, 1}, termMode{53, 0})...), []termMode{{3, 8}}},
		{"a truncated argument stops", append(enc(termMode{3, 8}), 53, 0, 0), []termMode{{3, 8}}},
		{"speeds", enc(termMode{ttyOpISpeed, 38400}, termMode{ttyOpOSpeed, 38400}), []termMode{{128, 38400}, {129, 38400}}},
	} {
		got := parseTermModes(c.in)
		if len(got) != len(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
		}
	}
}
