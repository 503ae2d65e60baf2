//go:build linux || solaris

package main

import "golang.org/x/sys/unix"

// TCGETS is tcgetattr's ioctl on these systems (as golang.org/x/term has
// it); the BSDs' is TIOCGETA.
const ioctlGetTermios = unix.TCGETS
