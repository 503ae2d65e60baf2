package main

import (
	"fmt"
	"strings"

	"github.com/sandmux/sandmux/client"
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

// doubledSuffixHint says what to do when HOST still ends in the suffix
// that the URL template adds after {host}: `sandmux doctor abc.e2b`,
// typed as one types `ssh abc.e2b`, dialled wss://8081-abc.e2b.e2b.app,
// which fails as an unknown host (or, under a wildcard DNS name, as a
// certificate that does not cover it) without a word on why. Empty when
// --strip-suffix is given or the suffix is not doubled.
func doubledSuffixHint(tmpl, host, strip string) string {
	if strip != "" {
		return ""
	}
	if tmpl == "" {
		tmpl = client.DefaultURLTemplate
	}
	name := strings.TrimSuffix(host, ".")
	dot := strings.LastIndex(name, ".")
	if dot <= 0 || dot == len(name)-1 {
		return ""
	}
	suffix := name[dot:]
	lower := strings.ToLower(tmpl)
	at := strings.Index(lower, "{host}"+strings.ToLower(suffix))
	if at < 0 {
		return ""
	}
	// The suffix must end where a name's label ends (".e2b.app",
	// ".e2b:8081", ".e2b/"), not run on into a longer one (".e2bx").
	if rest := lower[at+len("{host}")+len(suffix):]; rest != "" && !strings.ContainsAny(rest[:1], ".:/") {
		return ""
	}
	return fmt.Sprintf("HOST %s ends in %s, which --url adds again: give the sandbox id alone (%s) or add --strip-suffix %s", host, suffix, name[:dot], suffix)
}
