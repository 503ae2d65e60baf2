package mux_test

import (
	"bytes"
	"strings"
	"testing"
	"unicode"

	"github.com/sandmux/sandmux/mux"
)

// TestReadReplyEscapesControlCharacters: a reply's target and message end
// up on the user's terminal (ssh shows ProxyCommand's stderr), so a
// hostile server must not be able to send it escape sequences: a window
// title, a cleared line and a fake prompt, or a clipboard write (OSC 52).
func TestReadReplyEscapesControlCharacters(t *testing.T) {
	const esc = "\x1b]0;title\x07\x1b[1A\x1b[2K\x1b[31menter your password\x1b[0m\r\n"
	b := frame(1, byte(mux.StatusUnreachable), cat(tlv(0x01, "db:5432"+esc), tlv(0x02, "no route"+esc)))
	rep, err := mux.ReadReply(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	msg := rep.Err().Error()
	if strings.ContainsFunc(msg, unicode.IsControl) {
		t.Fatalf("the reply's error shows control characters: %q", msg)
	}
	if !strings.Contains(msg, "enter your password") || !strings.Contains(msg, `db:5432\x1b]0;title\x07`) {
		t.Fatalf("the reply's control characters are not shown escaped: %q", msg)
	}
}
