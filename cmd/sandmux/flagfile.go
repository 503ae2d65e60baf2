package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// withoutPath is err less its *fs.PathError, for a line that names the
// path once, itself.
func withoutPath(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

// readFlagFile reads the file a flag names (--token-file, --ca), with a
// failure said once, in one line, with what to check: "read --ca: open
// PATH: no such file or directory" named the flag and the path apart
// and said nothing to do.
func readFlagFile(flag, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--%s %s cannot be read: %w (check the path and the file's permissions)", flag, path, withoutPath(err))
	}
	return b, nil
}
