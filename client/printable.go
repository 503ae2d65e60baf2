package client

import (
	"strings"
	"unicode"
)

// Printable drops control characters from s, words written by whatever
// answered (a server, an edge, a proxy, a certificate's names) and bound
// for a terminal: escape sequences there could retitle the window, erase
// a line and draw a fake prompt, or write the clipboard.
func Printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}
