package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// clientToken is the bearer token of a proxy, forward or doctor, from
// --token (or SANDMUX_TOKEN) or --token-file. A --token-file wins over
// SANDMUX_TOKEN in the environment: with sandboxes of several providers,
// each ssh config block names its own file, where one variable would
// serve one provider and a --token in the block shows the token to
// every user who runs `ps` for as long as the ssh runs. White space
// around the token (a file's line end) is no part of it, as with the
// server's --token-file.
func clientToken(c *cli.Context) (string, error) {
	token, file := c.String("token"), c.String("token-file")
	if file == "" {
		return strings.TrimSpace(token), nil
	}
	if env, ok := os.LookupEnv("SANDMUX_TOKEN"); token != "" && (!ok || env != token) {
		return "", errors.New("both --token and --token-file are set; use one")
	}
	return readTokenFile(file, "put in it the token `sandmux server` was started with")
}

// readTokenFile reads a --token-file, client's or server's: a leading ~
// is the home directory (quoted in a ProxyCommand or a start command, ~
// is left for sandmux to expand), and white space around the token, such
// as the file's line end, is dropped. An empty file is refused, with
// emptyHint saying what to put in it.
func readTokenFile(file, emptyHint string) (string, error) {
	file, err := tildePath("token-file", file, myHome)
	if err != nil {
		return "", err
	}
	b, err := readFlagFile("token-file", file)
	if err != nil {
		return "", err
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("--token-file %s is empty: %s", file, emptyHint)
	}
	return t, nil
}
