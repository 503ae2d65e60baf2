package main

import (
	"fmt"
	"strings"
)

// stripHostSuffix removes --strip-suffix from host, as a `Host *.e2b`
// block means it. Host names are case-insensitive, and ssh matches its
// Host patterns against the name as typed but passes %h in lower case:
// a block written for `Host *.SBX` (ssh-config keeps the pattern's case)
// must still strip ".SBX" from "abc.sbx". A fully qualified host
// ("abc.e2b.") loses the suffix and its dot, and a suffix given without
// its leading dot ("e2b") takes the dot before it too: "{host}" never
// wants to end in a dot that the template's own text follows.
func stripHostSuffix(host, suffix string) (string, error) {
	if suffix == "" {
		return host, nil
	}
	if strings.ContainsAny(suffix, "*?") {
		plain := strings.NewReplacer("*", "", "?", "").Replace(suffix)
		return "", fmt.Errorf("--strip-suffix %q: give the suffix itself, without wildcards, e.g. --strip-suffix %s (for a `Host *%s` block)", suffix, plain, plain)
	}
	name := host
	if !strings.HasSuffix(suffix, ".") {
		name = strings.TrimSuffix(name, ".")
	}
	if len(name) < len(suffix) || !strings.EqualFold(name[len(name)-len(suffix):], suffix) {
		return host, nil
	}
	name = name[:len(name)-len(suffix)]
	if !strings.HasPrefix(suffix, ".") {
		name = strings.TrimSuffix(name, ".")
	}
	return name, nil
}
