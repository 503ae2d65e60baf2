package main

import "os"

// tellSSH writes a proxy's one line to ssh's own stderr when ssh sent the
// proxy's to /dev/null. ssh does that whenever ControlPersist is set,
// common in ~/.ssh/config, so that a master left in the background does
// not write on the terminal later; a proxy that could not connect then
// showed nothing, and the user saw only ssh's "kex_exchange_
// identification: Connection closed by remote host". Only the ssh that
// started the proxy, its parent, is asked: it is the command the user
// runs, in the foreground (a ControlPersist master goes on in a child of
// its own), and once it has exited the proxy has another parent and
// stays silent, as ssh meant.
func tellSSH(msg string) {
	if msg == "" || !isDevNull(os.Stderr) {
		return
	}
	f := sshStderr()
	if f == nil {
		return
	}
	defer f.Close()
	// The terminal of an interactive ssh may be raw, as main's own is.
	printError(rawTermWriter{f: f}, f, msg)
}

// isDevNull reports whether f is /dev/null.
func isDevNull(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(fi, null)
}
