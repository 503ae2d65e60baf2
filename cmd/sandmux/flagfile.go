package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// readFlagFile reads the file a flag names (--token-file, --ca), with a
// failure said once, in one line, with what to check: "read --ca: open
// PATH: no such file or directory" named the flag and the path apart
// and said nothing to do.
func readFlagFile(flag, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("--%s %s cannot be read: %w (check the path and the file's permissions)", flag, path, err)
	}
	return b, nil
}
