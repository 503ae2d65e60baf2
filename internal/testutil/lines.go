package testutil

import "strings"

// CountLines counts the non-empty lines of text that contain every one
// of subs: how tests find a log line by its message and attributes
// without depending on their order.
func CountLines(text string, subs ...string) int {
	n := 0
	for _, line := range strings.Split(text, "\n") {
		if line != "" && containsAll(line, subs) {
			n++
		}
	}
	return n
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
