package main

import (
	"bytes"
	"io"
	"os"
)

// rawTermWriter writes to a stderr that may be the terminal of an ssh in
// raw mode: ssh turns off the terminal's output processing, so a bare
// "\n" moves down without returning to the left edge and a proxy's line
// would start wherever the last one ended. While the terminal is raw,
// rawTermWriter ends lines with "\r\n", as ssh does its own messages.
type rawTermWriter struct {
	f *os.File
}

// Write writes p, each "\n" as "\r\n" while f is a terminal in raw mode.
func (w rawTermWriter) Write(p []byte) (int, error) {
	if !bytes.Contains(p, []byte("\n")) || !rawTerminal(w.f) {
		return w.f.Write(p)
	}
	if _, err := w.f.Write(crlf(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// crlf is p with every "\n" not already after "\r" as "\r\n".
func crlf(p []byte) []byte {
	out := make([]byte, 0, len(p)+8)
	for i, b := range p {
		if b == '\n' && (i == 0 || p[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, b)
	}
	return out
}

// printError writes main's one line for err to w. On a terminal in raw
// mode (an ssh session's, whose prompt the cursor is likely on) the line
// starts on a line of its own.
func printError(w io.Writer, f *os.File, msg string) {
	line := "sandmux: " + msg + "\n"
	if rawTerminal(f) {
		line = "\n" + line
	}
	_, _ = io.WriteString(w, line)
}
