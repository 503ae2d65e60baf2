//go:build !linux && !darwin && !windows

package main

import "errors"

// processArgs is unknown here.
func processArgs(int) ([]string, error) { return nil, errors.ErrUnsupported }
