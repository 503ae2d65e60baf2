// Package e2b holds E2B template examples; this test keeps them honest
// about the command and port that the README and `sandmux proxy` expect.
package e2b_test

import (
	"os"
	"strings"
	"testing"
)

func TestTemplatesStartSandmuxServer(t *testing.T) {
	for file, wants := range map[string][]string{
		"template.py": {
			`.set_start_cmd("sandmux server", wait_for_port(8081))`,
			`.apt_install(["openssh-server"])`,
			`"/usr/local/bin/sandmux"`,
		},
		"template.ts": {
			`.setStartCmd('sandmux server', waitForPort(8081))`,
			`.aptInstall(['openssh-server'])`,
			`'/usr/local/bin/sandmux'`,
		},
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range wants {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s lacks %s", file, want)
			}
		}
		if strings.Contains(string(b), "websocat -b") {
			t.Errorf("%s still starts websocat", file)
		}
	}
}
