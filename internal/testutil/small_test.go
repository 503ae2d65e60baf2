package testutil

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestBufferConcurrent(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte("x\n"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := strings.Count(b.String(), "x\n"); n != 800 {
		t.Fatalf("%d lines, want 800", n)
	}
}

func TestCountLines(t *testing.T) {
	log := "level=INFO msg=\"a\" x=1\n\nlevel=WARN msg=\"b\" x=1\nlevel=INFO msg=\"a\" x=2\n"
	for _, tt := range []struct {
		subs []string
		want int
	}{
		{nil, 3}, // every non-empty line
		{[]string{`msg="a"`}, 2},
		{[]string{`msg="a"`, "x=2"}, 1},
		{[]string{"x=2", `msg="a"`}, 1},
		{[]string{`msg="a"`, "level=WARN"}, 0},
	} {
		if got := CountLines(log, tt.subs...); got != tt.want {
			t.Errorf("CountLines(%q) = %d, want %d", tt.subs, got, tt.want)
		}
	}
}

func TestSplit(t *testing.T) {
	data := []byte("abcdefghij")
	for _, tt := range []struct {
		data  []byte
		parts uint8
		want  []string
	}{
		{data, 0, []string{"abcdefghij"}},
		{data, 1, []string{"abcde", "fghij"}},
		{data, 2, []string{"abcd", "efgh", "ij"}},
		{data, 3, []string{"abc", "def", "ghi", "j"}},
		{data, 7, []string{"abc", "def", "ghi", "j"}},
		{[]byte("ab"), 3, []string{"ab"}},
		{nil, 1, []string{""}},
	} {
		var got []string
		for _, p := range Split(tt.data, tt.parts) {
			got = append(got, string(p))
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Split(%q, %d) = %q, want %q", tt.data, tt.parts, got, tt.want)
		}
		if joined := bytes.Join(Split(tt.data, tt.parts), nil); !bytes.Equal(joined, tt.data) {
			t.Errorf("Split(%q, %d) loses bytes: %q", tt.data, tt.parts, joined)
		}
	}
}

func TestOpenFDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	open := func() *os.File {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	_ = open().Close() // the runtime's poller opens its own descriptors once
	before := OpenFDs(t)
	f := open()
	if got := OpenFDs(t); got != before+1 {
		t.Fatalf("%d descriptors with one more file open, want %d", got, before+1)
	}
	_ = f.Close()
	if got := OpenFDs(t); got != before {
		t.Fatalf("%d descriptors after closing it, want %d", got, before)
	}
}
