package sshd

import (
	"os"

	"golang.org/x/sys/unix"
)

// Where each RFC 4254 terminal mode lives in a Linux termios. Control
// characters Linux lacks (VDSUSP, VSTATUS, VFLUSH) are left out; OpenSSH
// skips them on Linux too.
var (
	ttyChars = map[byte]int{
		1: unix.VINTR, 2: unix.VQUIT, 3: unix.VERASE, 4: unix.VKILL, 5: unix.VEOF,
		6: unix.VEOL, 7: unix.VEOL2, 8: unix.VSTART, 9: unix.VSTOP, 10: unix.VSUSP,
		12: unix.VREPRINT, 13: unix.VWERASE, 14: unix.VLNEXT, 16: unix.VSWTC,
		18: unix.VDISCARD,
	}
	ttyIflags = map[byte]uint32{
		30: unix.IGNPAR, 31: unix.PARMRK, 32: unix.INPCK, 33: unix.ISTRIP, 34: unix.INLCR,
		35: unix.IGNCR, 36: unix.ICRNL, 37: unix.IUCLC, 38: unix.IXON, 39: unix.IXANY,
		40: unix.IXOFF, 41: unix.IMAXBEL, 42: unix.IUTF8,
	}
	ttyLflags = map[byte]uint32{
		50: unix.ISIG, 51: unix.ICANON, 52: unix.XCASE, 53: unix.ECHO, 54: unix.ECHOE,
		55: unix.ECHOK, 56: unix.ECHONL, 57: unix.NOFLSH, 58: unix.TOSTOP, 59: unix.IEXTEN,
		60: unix.ECHOCTL, 61: unix.ECHOKE, 62: unix.PENDIN,
	}
	ttyOflags = map[byte]uint32{
		70: unix.OPOST, 71: unix.OLCUC, 72: unix.ONLCR, 73: unix.OCRNL, 74: unix.ONOCR,
		75: unix.ONLRET,
	}
	ttyCflags = map[byte]uint32{90: unix.CS7, 91: unix.CS8, 92: unix.PARENB, 93: unix.PARODD}
	// ttySpeeds maps baud rates to their CBAUD codes. 0 is left out: as
	// an input speed it means "as the output speed" (cfsetispeed), and
	// OpenSSH's client sends the input speed first.
	ttySpeeds = map[uint32]uint32{
		50: unix.B50, 75: unix.B75, 110: unix.B110, 134: unix.B134, 150: unix.B150,
		200: unix.B200, 300: unix.B300, 600: unix.B600, 1200: unix.B1200, 1800: unix.B1800,
		2400: unix.B2400, 4800: unix.B4800, 9600: unix.B9600, 19200: unix.B19200,
		38400: unix.B38400, 57600: unix.B57600, 115200: unix.B115200, 230400: unix.B230400,
		460800: unix.B460800, 500000: unix.B500000, 576000: unix.B576000, 921600: unix.B921600,
		1000000: unix.B1000000, 1152000: unix.B1152000, 1500000: unix.B1500000,
		2000000: unix.B2000000, 2500000: unix.B2500000, 3000000: unix.B3000000,
		3500000: unix.B3500000, 4000000: unix.B4000000,
	}
)

// applyTermModes sets the client's terminal modes on tty, as OpenSSH's
// server does, so that its erase and interrupt characters, echo and
// line discipline are the client terminal's rather than the pty's
// defaults. Unknown modes and speeds Linux has no code for are skipped.
func applyTermModes(tty *os.File, modes []termMode) error {
	if len(modes) == 0 {
		return nil
	}
	rc, err := tty.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		var t *unix.Termios
		if t, ierr = unix.IoctlGetTermios(int(fd), unix.TCGETS); ierr != nil {
			return
		}
		for _, m := range modes {
			setTermMode(t, m)
		}
		ierr = unix.IoctlSetTermios(int(fd), unix.TCSETS, t)
	})
	if err != nil {
		return err
	}
	return ierr
}

func setTermMode(t *unix.Termios, m termMode) {
	flag := func(f *uint32, bit uint32) {
		if m.value != 0 {
			*f |= bit
		} else {
			*f &^= bit
		}
	}
	if v, ok := ttyChars[m.op]; ok {
		c := byte(m.value)
		if m.value == 255 {
			c = 0 // _POSIX_VDISABLE on Linux
		}
		t.Cc[v] = c
		return
	}
	if bit, ok := ttyIflags[m.op]; ok {
		flag(&t.Iflag, bit)
	} else if bit, ok := ttyLflags[m.op]; ok {
		flag(&t.Lflag, bit)
	} else if bit, ok := ttyOflags[m.op]; ok {
		flag(&t.Oflag, bit)
	} else if bit, ok := ttyCflags[m.op]; ok {
		flag(&t.Cflag, bit)
	} else if code, ok := ttySpeeds[m.value]; ok && (m.op == ttyOpISpeed || m.op == ttyOpOSpeed) {
		// One code serves both ways (TCSETS keeps a single speed, in
		// c_cflag), as with cfsetispeed and cfsetospeed on Linux.
		t.Cflag = t.Cflag&^unix.CBAUD | code
		if m.op == ttyOpISpeed {
			t.Ispeed = m.value
		} else {
			t.Ospeed = m.value
		}
	}
}
