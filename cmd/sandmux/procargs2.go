package main

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// errProcArgs2 means a kern.procargs2 buffer is not as macOS lays it out.
var errProcArgs2 = errors.New("malformed kern.procargs2")

// parseProcArgs2 reads the arguments out of a macOS kern.procargs2
// buffer: argc (32 bits, native order), the executable's path, NUL
// padding, argc NUL-terminated arguments, then the environment, which is
// left out: a variable that names a flag is not the flag.
func parseProcArgs2(b []byte) ([]string, error) {
	if len(b) < 4 {
		return nil, errProcArgs2
	}
	argc := int(binary.NativeEndian.Uint32(b))
	rest := b[4:]
	end := bytes.IndexByte(rest, 0)
	if end < 0 {
		return nil, errProcArgs2
	}
	rest = bytes.TrimLeft(rest[end:], "\x00")
	args := make([]string, 0, min(argc, 64))
	for len(args) < argc {
		end := bytes.IndexByte(rest, 0)
		if end < 0 {
			return nil, errProcArgs2
		}
		args = append(args, string(rest[:end]))
		rest = rest[end+1:]
	}
	return args, nil
}
