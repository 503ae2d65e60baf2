package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// markdownCode returns the code of a markdown text: the lines of its
// fenced blocks and its backtick spans.
func markdownCode(text string) []string {
	var code []string
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			code = append(code, line)
			continue
		}
		parts := strings.Split(line, "`")
		for i := 1; i < len(parts); i += 2 {
			code = append(code, parts[i])
		}
	}
	return code
}

var longFlag = regexp.MustCompile(`(?:^|[^\w-])--([a-z][a-z0-9-]*)`)

// otherProgramsFlags are flags the docs quote from other programs:
// websocat's (the recipe sandmux replaces) and curl's.
var otherProgramsFlags = []string{"binary", "exit-on-eof", "socks5-hostname", "cacert"}

// TestDocFlagsExist: every --flag README.md and SECURITY.md show in code
// is a flag of some sandmux command, so that a flag renamed or dropped
// cannot stay documented; found by hand before, in the audit that added
// this test.
func TestDocFlagsExist(t *testing.T) {
	known := map[string]bool{"help": true, "version": true}
	for _, cmd := range newApp().Commands {
		for _, f := range cmd.Flags {
			for _, n := range f.Names() {
				known[n] = true
			}
		}
	}
	for _, doc := range []string{"../../README.md", "../../SECURITY.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, c := range markdownCode(string(b)) {
			for _, m := range longFlag.FindAllStringSubmatch(c, -1) {
				n++
				if !known[m[1]] && !slices.Contains(otherProgramsFlags, m[1]) {
					t.Errorf("%s shows --%s, which no sandmux command has: %q", doc, m[1], c)
				}
			}
		}
		if n < 10 {
			t.Errorf("found only %d flags in %s; the parser is broken", n, doc)
		}
	}
}
