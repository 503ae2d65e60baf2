package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

// The default --max-receive-buffer and --max-resume-buffer: a quarter of
// the machine's memory each, at most 1 GiB (server.DefaultConfig's), and
// at least 128 MiB, more than one session's whole window growth (96 MiB)
// or resume buffer (64 MiB), so that one session still gets all it may. A
// sandbox of 512 MiB so gets 128 MiB of each.
const (
	bufferMax = 1 << 30
	bufferMin = 128 << 20
)

// defaultBuffer derives the default from the machine's memory, total
// bytes (known false when it could not be read).
func defaultBuffer(total uint64, known bool) uint64 {
	if !known {
		return bufferMax
	}
	return min(max(total/4, bufferMin), bufferMax)
}

// bufferFlag reads a size flag whose "auto" (the default) derives it from
// the machine's memory.
func bufferFlag(c *cli.Context, name string) (uint64, error) {
	v := c.String(name)
	if v == "auto" {
		return defaultBuffer(memoryTotal()), nil
	}
	n, err := parseSize(v)
	if err != nil {
		ref := valueRef(c, name)
		return 0, fmt.Errorf("%s: %w, e.g. %s; auto (the default) takes a quarter of memory, at most 1G, and 0 sets no bound across sessions",
			ref(strconv.Quote(v)), err, ref("512M"))
	}
	return n, nil
}

// errNotASize is parseSize's error.
var errNotASize = errors.New("not a size: want bytes or a whole number with K, M or G")

// parseSize reads bytes, or a whole number with K, M or G (powers of
// 1024; KiB, MiB, GiB and KB, MB, GB are read the same).
func parseSize(v string) (uint64, error) {
	s := strings.ToUpper(strings.TrimSpace(v))
	s = strings.TrimSuffix(strings.TrimSuffix(s, "B"), "I")
	shift := 0
	if s != "" {
		switch s[len(s)-1] {
		case 'K':
			shift = 10
		case 'M':
			shift = 20
		case 'G':
			shift = 30
		}
		if shift > 0 {
			s = s[:len(s)-1]
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > math.MaxInt64>>shift {
		return 0, errNotASize
	}
	return n << shift, nil
}
