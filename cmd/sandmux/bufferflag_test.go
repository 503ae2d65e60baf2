package main

import (
	"errors"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{
		"0": 0, "4096": 4096, "512M": 512 << 20, "512MiB": 512 << 20, "512mb": 512 << 20,
		"1G": 1 << 30, "1GiB": 1 << 30, "64k": 64 << 10, " 2G ": 2 << 30,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "1.5G", "-1", "1T", "abc", "99999999999G"} {
		if _, err := parseSize(in); !errors.Is(err, errNotASize) {
			t.Errorf("parseSize(%q): %v, want errNotASize", in, err)
		}
	}
}

// A quarter of memory, within 128 MiB and 1 GiB; 1 GiB when unknown.
func TestDefaultBuffer(t *testing.T) {
	for _, c := range []struct {
		total uint64
		known bool
		want  uint64
	}{
		{0, false, 1 << 30},
		{24 << 30, true, 1 << 30},
		{2 << 30, true, 512 << 20},
		{512 << 20, true, 128 << 20},
		{256 << 20, true, 128 << 20},
	} {
		if got := defaultBuffer(c.total, c.known); got != c.want {
			t.Errorf("defaultBuffer(%d, %v) = %d, want %d", c.total, c.known, got, c.want)
		}
	}
}
