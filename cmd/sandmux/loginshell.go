package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// passwdFile is where loginShell reads the user database; os/user
// (without cgo, as sandmux is built) reads the same file but does not
// give the shell.
const passwdFile = "/etc/passwd"

// loginShell is the shell the embedded server gives sessions: as sshd,
// the user database's shell for this user; then $SHELL (a system whose
// users live elsewhere, as macOS's directory service); then /bin/sh.
// A nologin or false shell is passed over: sessions run as the server's
// own user, so such a shell, on a service account, would only make every
// login fail.
func loginShell(passwd string, uid int, env string) string {
	if sh, ok := passwdShell(passwd, uid); ok && usableShell(sh) {
		return sh
	}
	if filepath.IsAbs(env) {
		return env
	}
	return "/bin/sh"
}

// passwdShell is the seventh field of the first line of the passwd file
// whose uid is uid.
func passwdShell(path string, uid int) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	want := strconv.Itoa(uid)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) == 7 && fields[2] == want && !strings.HasPrefix(fields[0], "#") {
			return fields[6], true
		}
	}
	return "", false
}

// usableShell reports whether sh is an absolute path to an executable
// file that is not a shell meant to refuse logins.
func usableShell(sh string) bool {
	if !filepath.IsAbs(sh) {
		return false
	}
	switch filepath.Base(sh) {
	case "nologin", "false":
		return false
	}
	fi, err := os.Stat(sh)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
