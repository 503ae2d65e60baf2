package main

import (
	"os"
	"testing"
)

// Windows's Stat gives a pipe no file ID, and os.SameFile took ssh's two
// pipes, stdin and stdout of a ProxyCommand, for one file: the proxy
// wrote the stream's bytes to its stdin, and ssh got none.
func TestSameFileTwoPipes(t *testing.T) {
	r1, w1, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	defer w1.Close()
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	defer w2.Close()
	if sameFile(r1, w2) {
		t.Fatal("two pipes taken for one file")
	}
}
