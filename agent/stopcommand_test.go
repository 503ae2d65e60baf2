package agent

import (
	"crypto/x509"
	"strings"
	"testing"

	"github.com/sandmux/sandmux/client"
)

// The agent's lines that tell a user to stop it name the command its
// caller gave (with --agent-dir where the directory is not the default),
// or the default one: a bare `sandmux agent --stop` copied by a user
// whose agent runs elsewhere stops another agent, or none.
func TestHintsNameTheStopCommand(t *testing.T) {
	const stop = "sandmux agent --stop --agent-dir '/tmp/a b'"
	for _, tt := range []struct {
		name string
		line func(stop string) string
	}{
		{"out of descriptors", func(stop string) string { return handoffFailed(&fdLimitError{limit: 1024}, stop) }},
		{"trust store", func(stop string) string {
			if !storeReadOnce {
				return "`" + stopCommand(stop) + "`"
			}
			return trustStoreHint(&client.ProxyError{Err: x509.UnknownAuthorityError{}}, stop).Error()
		}},
	} {
		for _, s := range []string{stop, ""} {
			want := "`" + stopCommand(s) + "`"
			if got := tt.line(s); !strings.Contains(got, want) || strings.Contains(got, "\n") {
				t.Errorf("%s, stop command %q: %q, want one line with %s", tt.name, s, got, want)
			}
		}
	}
}
