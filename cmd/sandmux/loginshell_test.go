package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLoginShell(t *testing.T) {
	dir := t.TempDir()
	zsh := filepath.Join(dir, "zsh")
	if err := os.WriteFile(zsh, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notExec := filepath.Join(dir, "fish")
	if err := os.WriteFile(notExec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	passwd := filepath.Join(dir, "passwd")
	lines := "root:x:0:0:root:/root:/bin/bash\n" +
		"#user:x:1000:1000::/home/old:/bin/ksh\n" +
		"user:x:1000:1000:User:/home/user:" + zsh + "\n" +
		"svc:x:999:999::/nonexistent:/usr/sbin/nologin\n" +
		"gone:x:998:998::/:/opt/missing/bash\n" +
		"odd:x:997:997::/:" + notExec + "\n" +
		"short:x:996\n"
	if err := os.WriteFile(passwd, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		uid  int
		env  string
		want string
	}{
		{"the user database's shell, over $SHELL, as sshd", 1000, "/bin/dash", zsh},
		{"a nologin shell passes to $SHELL", 999, "/bin/dash", "/bin/dash"},
		{"a missing shell passes to $SHELL", 998, "/bin/dash", "/bin/dash"},
		{"a shell that is not executable passes to $SHELL", 997, "/bin/dash", "/bin/dash"},
		{"a short line is no entry", 996, "", "/bin/sh"},
		{"no entry and no $SHELL", 4242, "", "/bin/sh"},
		{"a relative $SHELL is not used", 4242, "bash", "/bin/sh"},
	} {
		if got := loginShell(passwd, tc.uid, tc.env); got != tc.want {
			t.Errorf("%s: shell %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := loginShell(filepath.Join(dir, "none"), 1000, "/bin/dash"); got != "/bin/dash" {
		t.Errorf("no passwd file: shell %q, want $SHELL", got)
	}
}
